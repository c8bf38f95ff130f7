"""The config schema: every field lmjax reads, with its default and what it means.

Every other config starts from `get_config()` here and overrides fields; `model_shape(depth)` is the one
size dial the size presets use. Not meant to be run by itself (its model is the tiny CPU one).
"""
import ml_collections

from configs import clean


def model_shape(depth: int, *, aspect_ratio: int = 128, head_dim: int = 128, kv_group: int = 4,
                mlp_ratio: float = 3.5, multiple_of: int = 256) -> dict:
  """Llama-3-shaped sizes from the depth: width = depth·aspect_ratio, heads of head_dim, GQA groups of kv_group.

  With the defaults, depth=32 gives exactly Llama-3-8B's body (4096 wide, 32 heads, 8 KV heads, MLP 14336).
  """
  embed_dim = depth * aspect_ratio
  num_heads = max(1, embed_dim // head_dim)
  mlp_dim = multiple_of * -(-int(mlp_ratio * embed_dim) // multiple_of)
  return dict(num_layers=depth, embed_dim=embed_dim, num_heads=num_heads,
              num_kv_heads=max(1, num_heads // kv_group), mlp_dim=mlp_dim)


def get_config() -> ml_collections.ConfigDict:
  """The full schema with the tiny CPU model's values."""
  c = ml_collections.ConfigDict()

  c.model = model = ml_collections.ConfigDict()
  model.vocab_size = 8192  # token ids in [0, vocab_size); must equal the tokenizer's size
  model.num_layers = 4  # transformer blocks
  model.embed_dim = 256  # residual-stream width d; head size is embed_dim // num_heads unless head_dim
  model.num_heads = 4  # query heads; must divide embed_dim (unless head_dim is set)
  model.num_kv_heads = 2  # key/value heads (grouped-query attention); must divide num_heads
  model.mlp_dim = 768  # hidden width of the SwiGLU MLP
  model.rope_theta = 10_000.0  # RoPE base frequency (Llama 3 uses 500,000 for long contexts)
  model.norm_eps = 1e-5  # RMSNorm epsilon
  model.tie_embeddings = False  # reuse the input embedding as the output projection
  model.init_std = 0.02  # std of the normal initializer of every matrix (the output head: ≤ 0.5/√embed_dim)
  # Options of the Llama-shaped checkpoints `lmjax convert --from-hf` imports (set there); off, they add no
  # parameter, so a run's parameter tree is Llama's.
  model.head_dim = 0  # per-head size h; 0 = embed_dim // num_heads (Qwen3 and Mistral Nemo set it apart)
  model.qkv_bias = False  # learned biases on the q, k and v projections, none on the output (Qwen2/2.5)
  model.qk_norm = False  # RMSNorm over each query and key head before RoPE (Qwen3)
  # The HF model_type an import came from when the options above do not name it ("mistral": Llama's forward
  # under another class); "" = the class they describe (Llama, Qwen2, Qwen3). Only `--to-hf` reads it.
  model.hf_architecture = ""
  # RoPE frequency remap: type "none", or "llama3" (Llama 3.1/3.2): wavelengths above
  # original_max_position_embeddings / low_freq_factor are stretched by factor, those below
  # original_max_position_embeddings / high_freq_factor kept, those between blended smoothly.
  model.rope_scaling = ml_collections.ConfigDict(dict(
      type="none", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192))
  model.dtype = "float32"  # compute dtype of matmuls and activations: float32 | bfloat16
  model.param_dtype = "float32"  # dtype of the master weights and optimizer state
  # Stack the blocks' parameters on a leading 'layers' axis and run them with lax.scan, so compile time
  # does not grow with depth. Changes the parameter tree (blocks/attn/q [L, ...] instead of
  # blocks/0/attn/q), so a run and the runs started from it must agree; HF export/import handles both.
  model.scan_layers = False
  model.remat = "none"  # what backward recomputes per block: none | dots_saveable | dots_no_batch | full
  # Training attention: auto | blocked | xla | cudnn | splash. auto is query-blocked einsums on CPU (fastest
  # there), cuDNN's flash attention on GPU and Pallas splash attention on TPU (per device under shard_map; on
  # other backends it runs interpreted, slowly: for tests). See lmjax/backend.py.
  model.attention = "auto"
  # LoRA (lmjax/train/lora.py): SFT, DPO and RL train low-rank adapters W + (alpha/rank)·A·B on the frozen
  # base run instead of every weight; optimizer state exists for the adapters only, checkpoints hold them,
  # and loading the run (inference, export, a later stage) merges them into its base.
  model.lora = lora = ml_collections.ConfigDict()
  lora.rank = 0  # adapter rank r; 0 = off (every weight trains)
  lora.alpha = 16.0  # the adapters' scale is alpha / rank
  lora.targets = ("q", "k", "v", "o")  # adapted projections: any of q, k, v, o, gate, up, down (the MLP's)
  lora.base_workdir = ""  # set by the stage: the run the adapters sit on (its sft/rl base run); leave empty

  # The hardware the config is made for: what `lmjax plan --config C` compiles for without other flags
  # (a chip of lmjax/train/hardware.py's table, or cpu, and how many of them).
  c.hardware = hardware = ml_collections.ConfigDict()
  hardware.chip = "cpu"
  hardware.devices = 1

  # How a process runs, never what it computes (so no stage key reads it).
  c.runtime = runtime = ml_collections.ConfigDict()
  runtime.compilation_cache_dir = ""  # e.g. ~/.cache/lmjax/xla: compiled programs kept across runs; "" = off

  c.mesh = mesh = ml_collections.ConfigDict()
  mesh.data = 1  # pure data-parallel replicas (the only axis that should cross slow links between slices)
  mesh.fsdp = -1  # parameter-sharded data parallelism (ZeRO-3); -1 means "all remaining devices"
  mesh.tensor = 1  # tensor (Megatron) parallelism over heads and MLP hidden units
  mesh.max_replicated_fraction = 0.01  # guard: fail if more of the parameters than this stay unsharded

  # Logical axis -> mesh axis (a mesh axis name, a tuple of them, or None for replicated). Changing the
  # parallelism strategy is editing this table; model code only names the logical axes on the left.
  c.rules = rules = ml_collections.ConfigDict()
  rules.batch = ("data", "fsdp")  # the batch of sequences: split over every data-parallel axis
  rules.length = None  # the sequence axis (sequence parallelism would map it)
  rules.vocab = "tensor"  # vocabulary rows of the embedding and output projection
  rules.embed = "fsdp"  # the d_model axis of every weight: FSDP shards it
  rules.heads = "tensor"  # query heads
  rules.kv_heads = "tensor"  # key/value heads
  rules.head_dim = None  # the per-head feature axis
  rules.mlp = "tensor"  # SwiGLU hidden units
  rules.norm = None  # RMSNorm scales (small; replicated)
  rules.layers = None  # the stacked-layer axis of scanned parameters (model.scan_layers); scan needs it whole
  rules.act_embed = None  # the d_model axis of activations
  rules.act_heads = "tensor"  # the heads axis of attention activations
  rules.act_mlp = "tensor"  # the hidden axis of MLP activations
  rules.act_vocab = "tensor"  # the vocabulary axis of the logits

  c.data = data = ml_collections.ConfigDict()
  data.documents = ""  # glob of .txt/.jsonl(.gz) documents that `lmjax tokenizer` and `lmjax tokenize` read
  data.text_field = "text"  # JSON key holding the document text
  data.tokenizer = ""  # tokenizer.model path; "" means WORKDIR/tokenizer.model
  data.tokens_dir = ""  # token shards ({train,val}/*.array_record); "" means WORKDIR/tokens
  data.val_fraction = 0.02  # share of documents that go to the validation split (chosen by a hash of the id)
  data.num_shards = 4  # ArrayRecord shards per split
  data.workers = 2  # processes used to tokenize; 0 means one per CPU
  data.prefetch = 2  # batches the input pipeline prepares ahead of the step (background thread)
  # Packing streams the rows of each batch are split between (must divide train.batch_size). The data is
  # the same for any number of hosts; a host reads only the streams behind its rows, so on N hosts a
  # multiple of N lets each read 1/N of the data (1: every host packs the one stream and keeps its rows).
  data.streams = 1

  c.tokenizer = tok = ml_collections.ConfigDict()
  tok.model_type = "bpe"  # sentencepiece model type
  tok.character_coverage = 0.9995  # share of characters covered by pieces; the rest fall back to bytes
  tok.input_sentence_size = 2_000_000  # lines sampled for training (0 = all)
  tok.max_sentence_length = 16_384  # bytes; longer lines are skipped by sentencepiece
  tok.num_threads = 2  # sentencepiece trainer threads

  c.optim = optim = ml_collections.ConfigDict()
  # adamw | sgd (plain gradient steps: no per-weight normalisation; b1, b2, eps unused) | muon (Muon on the
  # hidden matrices at muon_lr, AdamW at lr on the embedding, output head and norms)
  optim.name = "adamw"
  optim.lr = 3e-3  # peak learning rate
  optim.b1 = 0.9  # AdamW beta1
  optim.b2 = 0.95  # AdamW beta2
  optim.eps = 1e-8  # AdamW epsilon
  optim.weight_decay = 0.1  # decoupled weight decay, applied to matrices only (never norm scales or biases)
  optim.clip_norm = 1.0  # global gradient-norm clipping threshold (0 disables)
  optim.muon_lr = 0.02  # muon: peak learning rate of the hidden matrices (the schedule's shape, as optim.lr's)
  optim.muon_beta = 0.95  # muon: Nesterov momentum of the matrices' gradients before orthogonalisation

  c.schedule = schedule = ml_collections.ConfigDict()
  schedule.warmup_steps = 20  # linear warm-up from 0 to optim.lr
  schedule.decay = "cosine"  # after warm-up: cosine | linear | constant
  schedule.min_lr_ratio = 0.1  # final learning rate as a fraction of optim.lr

  c.train = train = ml_collections.ConfigDict()
  train.steps = 200  # total optimizer steps
  train.seed = 0  # seeds parameter init, data shuffling and the per-step RNG
  train.batch_size = 16  # global batch, in sequences
  train.seq_len = 256  # tokens per sequence (packed documents)
  train.grad_accum_steps = 1  # micro-batches per step; batch_size must divide into them
  train.loss = "next_token"  # entry of lmjax.losses.LOSSES

  c.checkpoint = ckpt = ml_collections.ConfigDict()
  ckpt.every_steps = 50  # save params, optimizer, step and data position this often (and at the end)
  ckpt.keep = 2  # most recent checkpoints kept

  c.log = log = ml_collections.ConfigDict()
  log.every_steps = 1  # write a metrics.jsonl line (and TensorBoard scalars) this often
  log.tensorboard = True  # also write TensorBoard event files under WORKDIR/tensorboard

  c.eval = ev = ml_collections.ConfigDict()
  ev.every_steps = 50  # validation loss and bits per byte this often (and at the end); 0 disables
  ev.batches = 4  # validation batches per evaluation (same ones each time)
  # `lmjax eval`: the fields below; the model comes from model_workdir's own saved config.
  ev.model_workdir = ""  # the run to evaluate (its latest checkpoint, saved config and tokenizer)
  ev.tasks = ()  # names in lmjax.eval.stage.TASKS; () = by the run's kind (lmjax.eval.stage.DEFAULT_TASKS)
  # (with harness_tasks set, "harness" is added; ('harness',) runs the harness tasks alone)
  ev.tokens_dir = ""  # val token shards for val_loss/val_bpb; "" = those of the pretraining run it comes from
  # val batches (of the run's train.batch_size × seq_len, scored a micro-batch at a time) to score; 0 = all
  ev.loss_batches = 0
  ev.math_problems = 64  # held-out problems: the first N of the math task's (math.*; none of SFT's)
  ev.math_samples = 4  # k: samples per problem at rollout.temperature, for math_pass1 and math_pass_at_k
  ev.abstention_questions = 32  # unanswerable questions, and as many answerable ones (lmjax.eval.abstention)
  ev.mc_file = ""  # JSONL {"question", "options", "answer": index}; "" = the shipped assets/eval/ questions
  ev.seed = 0  # seeds the generated abstention questions (and the harness's few-shot draws)
  # lm-evaluation-harness tasks (`lmjax eval --harness`, lmjax/eval/harness_task.py), run after the tasks above
  ev.harness_tasks = ""  # comma-separated lm_eval task or group names, e.g. "hellaswag,arc_easy"; "" = none
  ev.harness_include = ""  # a folder of task YAMLs of your own (`--harness-include`), searched first
  ev.harness_fewshot = -1  # few-shot examples per prompt; -1 = each task's own default
  ev.harness_limit = 0  # documents per task (the first N); 0 = all
  ev.harness_batch_size = 32  # rows per scoring call and generation slots

  c.sft = sft = ml_collections.ConfigDict()
  sft.base_workdir = ""  # the pretraining run to fine-tune (its latest checkpoint and its tokenizer)
  sft.conversations = ""  # glob of JSONL conversations, one {"messages": [...]} per line (see lmjax.chat)
  sft.val_fraction = 0.05  # share of conversations held out (chosen by a hash of the conversation)
  # Weight of each source in the mix (lmjax/data/posttrain/sources.py); 0 leaves a source out.
  sft.mixture = ml_collections.ConfigDict(dict(file=1.0, chatterbot=0.0, math=0.0, identity=0.0, search=0.0,
                                               idk=0.0, context=0.0, unknown=0.0))
  sft.num_conversations = 0  # size of the mixed set; 0 = every conversation of every source once
  sft.seed = 0  # seeds the generated sources and the mix
  sft.math_problems = 2000  # generated math word problems (source "math")
  sft.math_levels = (1,)  # their difficulties, 1 (one small step) to 4, in equal shares
  sft.math_wordings = (0,)  # how their questions are worded, in turn: 0 the templates' own, 1-3 rewrites
  sft.identity_name = "lmjax"  # the assistant's name in the identity conversations
  sft.identity_creator = "the lmjax authors"
  sft.search_documents = ""  # glob of JSONL documents the search conversations search (source "search")
  sft.grounding_examples = 500  # conversations of the sources "context" (answer stated in the prompt) and
  # "unknown" (questions about invented entities, answered "I don't know"): lmjax/data/posttrain/grounding.py
  sft.idk_conversations = ""  # `lmjax probe`'s idk_conversations.jsonl (source "idk": "I don't know" data)

  c.rm = rm = ml_collections.ConfigDict()
  rm.base_workdir = ""  # the run (usually SFT) whose transformer the reward model starts from
  rm.pairs = ""  # glob of JSONL preference pairs: {"prompt", "chosen", "rejected"} (strings or messages)
  rm.math_problems = 0  # also build pairs from this many generated math problems (correct vs wrong solutions)
  rm.math_levels = (1,)  # their difficulties, 1 to 4, in equal shares
  rm.math_seed = 1  # seeds those problems and their wrong solutions (SFT's use seed sft.seed)
  rm.val_fraction = 0.1  # share of pairs held out for val_accuracy (chosen by a hash of the pair)
  rm.logprob_weight = 0.0  # the score adds this × the reply's mean token log-prob under the model (0: head only)

  # Preference optimisation (`lmjax dpo`): the policy trained on pairs directly, no reward model or sampling.
  # Pairs come as for the reward model; each row packs one pair, and the loss reads the replies' log-probs.
  c.dpo = dpo = ml_collections.ConfigDict()
  dpo.base_workdir = ""  # the run (usually SFT) to start from; its parameters are also DPO's frozen reference
  dpo.loss = "dpo"  # dpo | ipo (against the reference's log-probs) | simpo | orpo (reference-free); lmjax.losses
  dpo.beta = 0.1  # dpo, ipo: β of the implicit reward β·(log π − log π_ref); ipo's target margin is 1/(2β)
  dpo.simpo_beta = 2.0  # simpo: β scaling the length-normalised log-probs (the SimPO paper uses 2 to 2.5)
  dpo.simpo_gamma = 0.5  # simpo: the reward margin γ the chosen reply must clear
  dpo.orpo_lambda = 0.1  # orpo: weight λ of the odds-ratio term added to the chosen reply's per-token NLL
  dpo.pairs = ""  # glob of JSONL preference pairs: {"prompt", "chosen", "rejected"} (strings or messages)
  dpo.math_problems = 0  # also build pairs from this many generated math problems (correct vs wrong solutions)
  dpo.math_levels = (1,)  # their difficulties, 1 to 4, in equal shares
  dpo.math_seed = 1  # seeds those problems and their wrong solutions (the reward model's default too)
  dpo.val_fraction = 0.1  # share of pairs held out for val_accuracy (chosen by a hash of the pair)

  # The verifiable math task: RL trains on its problems, and RL's held-out evaluation and `lmjax eval` score
  # the same held-out ones. Both stages hash this section, so their numbers always compare.
  c.math = math = ml_collections.ConfigDict()
  math.levels = (1,)  # difficulties of the word problems, 1 (one small step) to 4, in equal shares
  math.heldout_seed = 1_000  # fixes the held-out problems, independently of rl.seed
  math.wordings = (0,)  # how RL's training questions are worded, in turn: 0 the templates' own, 1-3 rewrites
  math.heldout_wordings = (3,)  # how held-out questions are worded: by default in frames no training run used

  # How replies are generated, by RL's rollouts and by `lmjax eval` alike (math samples, abstention, the
  # sample conversations); both stages hash this section.
  c.rollout = rollout = ml_collections.ConfigDict()
  rollout.temperature = 1.0  # sampling temperature (1 keeps RL's importance ratio on-policy); evals' greedy is 0
  rollout.top_k = 0  # 0 samples from the whole vocabulary (the policy the loss sees)
  rollout.max_new_tokens = 48  # tokens per generation round (a round ends at a tool call or the reply's end)
  rollout.max_reply_tokens = 96  # a reply's total length cap, tool outputs included
  rollout.max_tool_calls = 4  # tool calls a reply may make; a further call gets an error output instead of running
  rollout.batch = 128  # engine slots: replies decoded together (a finished one's slot takes the next prompt)

  # RL (`lmjax rl`). train.batch_size is the PPO minibatch (rows); train.steps is derived (iterations ×
  # epochs × minibatches) and sets the LR schedule's length; optim.* and schedule.* apply as usual.
  c.rl = rl = ml_collections.ConfigDict()
  rl.base_workdir = ""  # the run (usually SFT) to start from; its parameters are also the frozen KL reference
  rl.train_problems = 2000  # the pool of training problems (seeded by rl.seed)
  rl.heldout_problems = 128  # evaluation problems, none of them among RL's or the SFT run's training problems
  rl.iterations = 30  # sample -> score -> update rounds
  rl.prompts_per_iteration = 16  # problems per iteration
  rl.group_size = 8  # G replies sampled per problem
  rl.epochs = 1  # K passes over each iteration's rollouts (1 = every update on fresh samples)
  rl.score_batch = 0  # rows per scoring pass (policy, reference, critic, reward model); 0 = the train micro-batch
  rl.reward = "verifier"  # verifier (1 for a correct final answer, else 0) | reward_model (its score)
  rl.reward_model_workdir = ""  # the `lmjax rm` run that scores replies when rl.reward = "reward_model"
  rl.advantage = "group_relative"  # group_relative (GRPO-style, no critic) | group_positive (its positive part:
  #                                   reinforce the better replies, push none down) | gae (PPO with a value head)
  rl.scale_advantages = True  # group_relative: divide by the group's reward std (False: only subtract the mean)
  # Train only on groups whose replies got different rewards (DAPO's dynamic sampling, without resampling): a
  # uniform group's advantages are all 0, so it adds nothing to the gradient but tokens to each minibatch's
  # normaliser (a smaller step) and update time. With rl.kl_coef > 0 its KL term goes too.
  rl.skip_uniform_groups = False
  rl.gamma = 1.0  # GAE discount per token
  rl.lam = 0.95  # GAE lambda
  rl.clip_eps = 0.2  # PPO ratio clip: the objective is flat outside [1 - eps, 1 + eps]
  rl.kl_coef = 0.02  # weight of the KL(policy || base run) penalty per token (k3 estimator)
  rl.entropy_coef = 0.0  # weight of the entropy bonus per token
  rl.value_clip = 0.2  # gae: how far the value may move from the rollout's before its loss is clipped
  rl.value_coef = 0.5  # gae: weight of the value loss
  rl.eval_every = 5  # iterations between held-out evaluations (also before the first and after the last)
  rl.eval_samples = 8  # samples per held-out problem for pass@G
  rl.seed = 0  # seeds the problems, their order, the rollouts and the minibatches

  # Knowledge probing (`lmjax probe`): Llama 3's "I don't know" data. Questions with known answers, several
  # sampled replies each; the questions the model is consistently wrong on become abstention conversations.
  c.probe = probe = ml_collections.ConfigDict()
  probe.model_workdir = ""  # the run to probe (its latest checkpoint, saved config and tokenizer)
  probe.prompt = "chat"  # "chat": ask a chat model; "few_shot": ask a pretrained base model (the chain's probe)
  probe.qa_file = ""  # glob of JSONL {"question", "answer"[, "kind"]}; "" = generate questions from the Bible
  probe.kinds = ("finish_verse", "verse_book", "verse_count", "next_book")  # generated kinds (qa_facts.KINDS)
  probe.questions = 200  # questions whose replies decide the "I don't know" data
  probe.heldout_questions = 100  # disjoint questions that only measure accuracy and abstention (before/after)
  probe.seed = 0  # seeds the probe questions (or the qa_file shuffle) and the sampling
  probe.heldout_seed = 1  # seeds the held-out questions; any probe question among them is dropped
  probe.samples_per_question = 4  # replies sampled per question
  probe.temperature = 0.7  # sampling temperature of the replies (0 = greedy: every sample the same)
  probe.top_k = 40  # sample among the k most likely tokens (0 = all)
  probe.max_new_tokens = 32  # reply length cap; answers are a word or a name
  probe.batch_size = 64  # rows (question × sample) generated together
  probe.wrong_threshold = 0.0  # "consistently wrong" = at most this share of a question's samples correct
  probe.keep_known = True  # also keep correct replies to known questions, so SFT does not teach refusing all
  probe.known_threshold = 0.5  # "knows" = at least this share of a question's samples correct
  probe.system = ""  # system message of every probe prompt and written conversation ("" = none)

  # The whole chain (`lmjax run`): raw web pages -> ... -> RL -> eval; lmjax/chain/stages.py wires the
  # stages' folders into the path fields (data.documents, sft.base_workdir, ...), so leave those empty here.
  c.chain = chain = ml_collections.ConfigDict()
  chain.web_input = ""  # glob of raw web inputs (WARC/HTML/JSONL/parquet) for the clean stage
  chain.corpus = ""  # glob of curated documents mixed with the cleaned pages for tokenizer and pretraining
  chain.stages = ("clean", "tokenizer", "tokenize", "pretrain", "probe", "sft", "rm", "rl",
                  "eval_pretrain", "eval_sft", "eval_rl")  # run in this order; each after the stages it reads
  # How the final policy learns preferences after SFT: rm_ppo (a reward model, then RL: stages rm, rl, eval_rl)
  # or dpo (config.dpo.loss on the pairs directly: stages dpo, eval_dpo, in place of those three).
  chain.preference = "rm_ppo"
  c.clean = clean.get_config()  # the clean stage's config (configs/clean.py documents every field)
  # Per-stage overrides of the shared sections, e.g. stage.sft.train.steps: each stage runs on the chain
  # config with its own entry applied. Only fields that exist in this schema may be overridden.
  c.stage = ml_collections.ConfigDict({name: {} for name in (*chain.stages, "dpo", "eval_dpo")})

  c.sample = sample = ml_collections.ConfigDict()
  sample.max_new_tokens = 64  # tokens generated by `lmjax sample`
  sample.temperature = 0.8  # 0 means greedy
  sample.top_k = 40  # sample among the k most likely tokens (0 = all)
  sample.top_p = 1.0  # sample within the smallest set of tokens whose probability reaches p (1 = all)
  sample.seed = 0  # sampling RNG seed

  # `lmjax serve`: the OpenAI-compatible API and the web page over one engine (lmjax/serve).
  c.serve = serve = ml_collections.ConfigDict()
  serve.slots = 8  # replies decoded together; a batch with more waits for free slots
  serve.steps_per_call = 8  # tokens per device call: how often a streamed reply grows
  serve.batch_window_ms = 20.0  # after a request arrives, how long the server gathers others into its batch
  serve.max_waiting = 64  # requests allowed to wait for the engine; one more is refused with HTTP 503
  serve.max_tool_calls = 4  # tool calls a reply may make (a later one gets an error output), as `lmjax chat`
  serve.inside_max_tokens = 64  # longest prompt the "inside" view takes (attention is tokens² per head)
  return c
