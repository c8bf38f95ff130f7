"""A few greedy conversations with a chat model, as markdown (WORKDIR/samples.md; the chain's report shows
them): two held-out math problems, a question about an invented entity, one whose answer stands in the
prompt, one of arithmetic, and who it says it is."""
from lmjax import chat
from lmjax.eval import abstention, model_run
from lmjax.eval.math_accuracy import heldout_task
from lmjax.infer.chat_session import format_reply
from lmjax.infer.engine import rollout_engine
from lmjax.infer.tools import make_tools


def sample_questions(config, run) -> list[str]:
  problems = heldout_task(config, model_run.sft_config(run.lineage)).heldout
  unanswerable, answerable = abstention.make_questions(8, config.eval.seed)
  first = lambda kind: next(q.question for q in answerable if q.kind == kind)
  return [p.question for p in problems[:2]] + [unanswerable[0].question, first("in_context"),
                                               first("arithmetic"), "Who are you?"]


def samples_markdown(config, run) -> str:
  """Each question and the model's greedy reply (tool calls and outputs marked), as markdown."""
  tok, g = run.loaded.tokenizer, config.rollout
  questions = sample_questions(config, run)
  prompts = [chat.render_prompt([{"role": "user", "content": q}], tok) for q in questions]
  engine = rollout_engine(run.loaded.graphdef, run.loaded.params, tok, g, tools=make_tools(), slots=len(prompts),
                          context=run.loaded.context)
  replies = engine.generate(prompts)
  blocks = [f"**user:** {q}\n\n**assistant:**\n\n```\n{format_reply(reply.message(tok))}\n```"
            for q, reply in zip(questions, replies)]
  return "\n\n".join(blocks) + "\n"
