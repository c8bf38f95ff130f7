"""Post-training data: conversations for SFT, preference pairs for the reward model, verifiable prompts for RL.

  math_problems  seeded math word problems, worked solutions with calculator calls, the answer verifier
  conversations  chatterbot-corpus dialogues, identity conversations, "I don't know" conversations
  qa_facts       questions with known answers from the shipped Bible, for knowledge probing
  tool_conversations  search-tool conversations grounded in the tool's real output
  preferences    chosen/rejected pairs from math problems
  mixture        a seeded weighted mix of conversation sources, each conversation validated
"""
