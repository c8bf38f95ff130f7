"""python experiments/benchmarks/torch_reference.py

Plain-PyTorch (CPU, float32, eager) version of the lmjax Llama-style decoder, used only as a
speed reference that `experiments/benchmarks/train_throughput.py` times in the same run as the
JAX model. Same architecture and parameter count as lmjax; trains on random token ids with AdamW
(weight decay on matrices only, as lmjax.optim does).
Running this file times the reference config and prints the result as JSON.
"""

import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

REFERENCE_CONFIG = dict(vocab_size=8192, embed_dim=256, num_layers=4, num_heads=4, num_kv_heads=2,
                        head_dim=64, mlp_dim=768, batch_size=8, seq_len=256, steps=20,
                        warmup_steps=3)
INIT_STD = 0.02
NORM_EPS = 1e-5


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * scale over the last axis, in float32."""

    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        """(..., dim) -> (..., dim)."""
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * self.scale


def rope_tables(seq_len, head_dim, theta):
    """cos, sin tables, each (seq_len, head_dim // 2)."""
    freqs = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * freqs[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE: (batch, heads, seq, head_dim) -> same shape."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    """Causal grouped-query attention with RoPE, no biases."""

    def __init__(self, embed_dim, num_heads, num_kv_heads, head_dim):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.wq = nn.Linear(embed_dim, num_heads * head_dim, bias=False)
        self.wk = nn.Linear(embed_dim, num_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(embed_dim, num_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(num_heads * head_dim, embed_dim, bias=False)

    def forward(self, x, cos, sin):
        """(batch, seq, embed_dim) -> (batch, seq, embed_dim)."""
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             enable_gqa=self.num_kv_heads != self.num_heads)
        return self.wo(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class MLP(nn.Module):
    """SwiGLU: down(silu(x @ Wgate) * (x @ Wup)), no biases."""

    def __init__(self, embed_dim, mlp_dim):
        super().__init__()
        self.gate = nn.Linear(embed_dim, mlp_dim, bias=False)
        self.up = nn.Linear(embed_dim, mlp_dim, bias=False)
        self.down = nn.Linear(mlp_dim, embed_dim, bias=False)

    def forward(self, x):
        """(batch, seq, embed_dim) -> (batch, seq, embed_dim)."""
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    """Pre-norm decoder block: x + Attn(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, embed_dim, num_heads, num_kv_heads, head_dim, mlp_dim):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(embed_dim), RMSNorm(embed_dim)
        self.attn = Attention(embed_dim, num_heads, num_kv_heads, head_dim)
        self.mlp = MLP(embed_dim, mlp_dim)

    def forward(self, x, cos, sin):
        """(batch, seq, embed_dim) -> (batch, seq, embed_dim)."""
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    """Llama-style decoder: embed, blocks, final norm, output projection (optionally tied)."""

    def __init__(self, *, vocab_size, embed_dim, num_layers, num_heads, num_kv_heads, head_dim,
                 mlp_dim, max_seq_len, tie_embeddings, rope_theta):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, num_kv_heads, head_dim, mlp_dim)
                                    for _ in range(num_layers))
        self.final_norm = RMSNorm(embed_dim)
        self.out = None if tie_embeddings else nn.Linear(embed_dim, vocab_size, bias=False)
        cos, sin = rope_tables(max_seq_len, head_dim, rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if not name.endswith("scale"):
                nn.init.normal_(p, 0.0, INIT_STD)

    def forward(self, tokens):
        """(batch, seq) int64 -> logits (batch, seq, vocab_size)."""
        t = tokens.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin)
        x = self.final_norm(x)
        return x @ self.embed.weight.T if self.out is None else self.out(x)


def torch_trainer(*, vocab_size, embed_dim, num_layers, num_heads, num_kv_heads, head_dim, mlp_dim,
                  batch_size, seq_len, threads=None, tie_embeddings=False, rope_theta=10000.0, seed=0,
                  torch_compile=False):
    """(step, facts): step(i) trains on the i-th random (batch, seq_len + 1) batch and returns the loss.

    threads=None keeps torch's default; torch_compile=True wraps the model in torch.compile.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = Decoder(vocab_size=vocab_size, embed_dim=embed_dim, num_layers=num_layers,
                    num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                    mlp_dim=mlp_dim, max_seq_len=seq_len, tie_embeddings=tie_embeddings,
                    rope_theta=rope_theta)
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    scales = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": matrices, "weight_decay": 0.1}, {"params": scales, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), fused=True)
    forward = torch.compile(model) if torch_compile else model
    generator = torch.Generator().manual_seed(seed)

    def train_step(i: int) -> float:
        """One full step (forward, backward, clipping, AdamW) on a fresh random batch; the loss."""
        del i
        batch = torch.randint(0, vocab_size, (batch_size, seq_len + 1), generator=generator)
        logits = forward(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    facts = {"param_count": sum(p.numel() for p in model.parameters()),
             "torch_version": torch.__version__, "threads": torch.get_num_threads()}
    return train_step, facts


def time_torch_training(*, steps, warmup_steps, **shape_and_options):
    """Median seconds per step of `torch_trainer`'s step, as tokens/s and step_s, with its facts."""
    step, facts = torch_trainer(**shape_and_options)
    for i in range(warmup_steps):
        step(i)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        loss = step(i)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    tokens = shape_and_options["batch_size"] * shape_and_options["seq_len"]
    return {"tokens_per_s": tokens / step_s, "step_s": step_s, "final_loss": loss, **facts}


if __name__ == "__main__":
    print(json.dumps(time_torch_training(**REFERENCE_CONFIG), indent=2))
