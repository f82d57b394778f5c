# SPDX-License-Identifier: MIT
"""DeepSeek-V3 in plain PyTorch, with Hugging Face parameter names (so the state dict is the hub layout).

Numerics follow transformers' DeepseekV3 (checked against the golden fixtures by check_reference.py): RMSNorm in
fp32, MLA with optional q_lora, interleaved RoPE with YaRN (mscale² in the softmax scale), sigmoid/softmax routing
with group-limited top-k and e_score_correction_bias, shared experts, and the MTP layer at index num_hidden_layers
(h_i after the final norm + embedding of token i+1 predicts token i+2).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)) * self.weight


def rope_tables(cfg):
    """inv_freq [rope/2], attention factor on cos/sin, softmax scale (YaRN as in transformers)."""
    dim, base = cfg["qk_rope_head_dim"], cfg.get("rope_theta", 10000.0)
    qk_head_dim = cfg["qk_nope_head_dim"] + dim
    scale = qk_head_dim ** -0.5
    idx = torch.arange(0, dim, 2, dtype=torch.float64)
    pos_freq = base ** (idx / dim)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("type", rs.get("rope_type")) != "yarn":
        return (1.0 / pos_freq).float(), 1.0, scale
    factor = rs["factor"]
    orig = rs["original_max_position_embeddings"]
    mscale = lambda s, m: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
    corr = lambda rot: dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
    low = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
    high = min(math.ceil(corr(rs.get("beta_slow", 1))), dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
    inv = (1.0 / (factor * pos_freq)) * ramp + (1.0 / pos_freq) * (1 - ramp)
    m, m_all = rs.get("mscale", 1.0), rs.get("mscale_all_dim", 0.0)
    attn_factor = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor, 1.0)
    if m_all:
        scale = scale * mscale(factor, m_all) ** 2
    return inv.float(), attn_factor, scale


def apply_rope(x, cos, sin):
    """x [..., T, d] with (even, odd) pairs rotated by position; cos/sin [T, d/2]."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class MLP(nn.Module):
    def __init__(self, dim, inter):
        super().__init__()
        self.gate_proj = nn.Linear(dim, inter, bias=False)
        self.up_proj = nn.Linear(dim, inter, bias=False)
        self.down_proj = nn.Linear(inter, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.H, self.nope, self.rope, self.dv = H, cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
        self.rank = cfg["kv_lora_rank"]
        qd = self.nope + self.rope
        self.q_lora = cfg.get("q_lora_rank")
        if self.q_lora:
            self.q_a_proj = nn.Linear(d, self.q_lora, bias=False)
            self.q_a_layernorm = RMSNorm(self.q_lora, cfg["rms_norm_eps"])
            self.q_b_proj = nn.Linear(self.q_lora, H * qd, bias=False)
        else:
            self.q_proj = nn.Linear(d, H * qd, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(d, self.rank + self.rope, bias=False)
        self.kv_a_layernorm = RMSNorm(self.rank, cfg["rms_norm_eps"])
        self.kv_b_proj = nn.Linear(self.rank, H * (self.nope + self.dv), bias=False)
        self.o_proj = nn.Linear(H * self.dv, d, bias=False)

    def forward(self, x, cos, sin, scale, cache=None):
        """x [B, T, d]; cos/sin [T, rope/2] for these positions; cache: dict with 'k', 'v' [B, H, S, *] to extend."""
        B, T, _ = x.shape
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if self.q_lora else self.q_proj(x)
        q = q.view(B, T, self.H, -1).transpose(1, 2)                     # [B, H, T, nope+rope]
        kv = self.kv_a_proj_with_mqa(x)                                   # [B, T, rank+rope]
        c, k_pe = kv[..., :self.rank], kv[..., self.rank:]
        kvb = self.kv_b_proj(self.kv_a_layernorm(c)).view(B, T, self.H, -1).transpose(1, 2)
        k_nope, v = kvb[..., :self.nope], kvb[..., self.nope:]           # [B, H, T, nope], [B, H, T, dv]
        q_pe = apply_rope(q[..., self.nope:], cos, sin)
        k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin).expand(B, self.H, T, self.rope)
        qf = torch.cat((q[..., :self.nope], q_pe), -1)
        kf = torch.cat((k_nope, k_pe), -1)
        if cache is not None:
            if "k" in cache:
                kf = torch.cat((cache["k"], kf), 2)
                v = torch.cat((cache["v"], v), 2)
            cache["k"], cache["v"] = kf, v
        S = kf.shape[2]
        att = (qf @ kf.transpose(-1, -2)).float() * scale                # [B, H, T, S]
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1).to(v.dtype)
        o = (att @ v).transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(o)


class Gate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        E = cfg["n_routed_experts"]
        self.weight = nn.Parameter(torch.empty(E, cfg["hidden_size"]))
        self.k, self.E = cfg["num_experts_per_tok"], E
        self.n_group, self.topk_group = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
        self.scoring = cfg.get("scoring_func", "softmax")
        self.method = cfg.get("topk_method", "greedy")
        self.norm = cfg.get("norm_topk_prob", False)
        self.scaling = cfg.get("routed_scaling_factor", 1.0)
        if self.method == "noaux_tc":
            self.register_buffer("e_score_correction_bias", torch.zeros(E))
        else:
            self.e_score_correction_bias = None

    def forward(self, x):
        """x [N, d] -> expert ids [N, k], weights [N, k] (fp32)."""
        logits = x.float() @ self.weight.float().t()
        s = logits.sigmoid() if self.scoring == "sigmoid" else logits.softmax(-1)
        choice = s.detach() + self.e_score_correction_bias if self.e_score_correction_bias is not None else s.detach()
        if self.method in ("noaux_tc", "group_limited_greedy") and self.n_group > 1:
            g = choice.view(-1, self.n_group, self.E // self.n_group)
            gs = g.topk(2, -1).values.sum(-1) if self.method == "noaux_tc" else g.max(-1).values
            keep = torch.zeros_like(gs).scatter_(1, gs.topk(self.topk_group, -1).indices, 1.0)
            keep = keep.unsqueeze(-1).expand_as(g).reshape(-1, self.E)
            choice = choice.masked_fill(keep == 0, float("-inf"))
        ids = choice.topk(self.k, -1).indices
        w = s.gather(1, ids)
        if self.norm and self.k > 1:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return ids, w * self.scaling


class MoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, inter = cfg["hidden_size"], cfg["moe_intermediate_size"]
        self.experts = nn.ModuleList(MLP(d, inter) for _ in range(cfg["n_routed_experts"]))
        self.gate = Gate(cfg)
        ns = cfg.get("n_shared_experts") or 0
        self.shared_experts = MLP(d, inter * ns) if ns else None
        self.last_ids = None  # expert ids of the last forward, for load statistics

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        ids, w = self.gate(x)
        self.last_ids = ids
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, slot = (ids == e).nonzero(as_tuple=True)
            if tok.numel():
                out.index_add_(0, tok, expert(x[tok]) * w[tok, slot].unsqueeze(-1).to(x.dtype))
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        return out.view(shape)


class DecoderLayer(nn.Module):
    def __init__(self, cfg, idx):
        super().__init__()
        self.self_attn = Attention(cfg)
        moe = cfg.get("n_routed_experts") and idx >= cfg.get("first_k_dense_replace", 0) and \
            idx % cfg.get("moe_layer_freq", 1) == 0
        self.mlp = MoE(cfg) if moe else MLP(cfg["hidden_size"], cfg["intermediate_size"])
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, scale, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, scale, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class SharedHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class MTPLayer(DecoderLayer):
    """DecoderLayer plus enorm/hnorm/eh_proj/shared_head.norm. Its embed_tokens and shared_head.head are the main
    model's embedding and lm_head (shared, as in DeepSeek-V3); export writes copies under its own names."""
    def __init__(self, cfg, idx):
        super().__init__(cfg, idx)
        d = cfg["hidden_size"]
        self.enorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.hnorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.eh_proj = nn.Linear(2 * d, d, bias=False)
        self.shared_head = SharedHead(cfg)


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        n = cfg["num_hidden_layers"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        layers = [DecoderLayer(cfg, i) for i in range(n)]
        layers += [MTPLayer(cfg, n + j) for j in range(cfg.get("num_nextn_predict_layers", 0) or 0)]
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class DeepseekV3(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.n_layers = cfg["num_hidden_layers"]
        self.model = Inner(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        inv_freq, self.attn_factor, self.scale = rope_tables(cfg)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def rope(self, pos0, T):
        f = torch.arange(pos0, pos0 + T, dtype=torch.float32, device=self.inv_freq.device)[:, None] * self.inv_freq
        return f.cos() * self.attn_factor, f.sin() * self.attn_factor

    def forward(self, tokens, pos0=0, caches=None):
        """tokens [B, T] -> (hidden after final norm [B, T, d], logits [B, T, V])."""
        cos, sin = self.rope(pos0, tokens.shape[1])
        x = self.model.embed_tokens(tokens)
        for i in range(self.n_layers):
            x = self.model.layers[i](x, cos, sin, self.scale, None if caches is None else caches[i])
        h = self.model.norm(x)
        return h, self.lm_head(h)

    def mtp_layers(self):
        return self.model.layers[self.n_layers:]

    def forward_mtp(self, h, next_tokens, pos0=0, caches=None, embed=None, head=None):
        """h [B, T, d] (after final norm) and next_tokens [B, T] (token i+1) -> MTP logits [B, T, V] (token i+2).
        embed/head: the MTP layer's own embedding and head matrices when they differ from the main model's."""
        mtp = self.model.layers[self.n_layers]
        cos, sin = self.rope(pos0, h.shape[1])
        emb = F.embedding(next_tokens, embed) if embed is not None else self.model.embed_tokens(next_tokens)
        e = mtp.enorm(emb)
        x = mtp.eh_proj(torch.cat((e, mtp.hnorm(h)), -1))
        x = DecoderLayer.forward(mtp, x, cos, sin, self.scale, caches)
        x = mtp.shared_head.norm(x)
        return x @ head.t() if head is not None else self.lm_head(x)

    def moe_layers(self):
        return [l.mlp for l in self.model.layers if isinstance(l.mlp, MoE)]

    def hub_state_dict(self):
        """Parameters under the hub names, MTP embed/head copies included."""
        sd = {k: v for k, v in self.state_dict().items()}
        for j, _ in enumerate(self.mtp_layers()):
            n = self.n_layers + j
            sd[f"model.layers.{n}.embed_tokens.weight"] = sd["model.embed_tokens.weight"]
            sd[f"model.layers.{n}.shared_head.head.weight"] = sd["lm_head.weight"]
        return sd

    def load_hub_state_dict(self, sd):
        sd = dict(sd)
        for j, _ in enumerate(self.mtp_layers()):
            n = self.n_layers + j
            # The fixtures keep their own copies; training ties them, so a loaded MTP head must equal the main one
            # unless the caller wants the separate copies (see check_reference.py).
            sd.pop(f"model.layers.{n}.embed_tokens.weight", None)
            sd.pop(f"model.layers.{n}.shared_head.head.weight", None)
        missing, unexpected = self.load_state_dict(sd, strict=False)
        missing = [m for m in missing if not m.endswith("inv_freq")]
        if missing or unexpected:
            raise ValueError(f"state dict mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
