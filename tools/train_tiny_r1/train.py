# SPDX-License-Identifier: MIT
"""Trains tiny-R1 (DeepSeek-V3 architecture, < 10M parameters) on digit-by-digit arithmetic and exports it in the
Hugging Face hub layout. Seeded and reproducible for a given device and thread count.

    python3 train.py --out ../../models/tiny-r1            # full run (see README.md for time on CPU / H100)
    python3 train.py --out /tmp/t --steps 50 --eval 50     # smoke test
"""
import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F

import bpe
import data
import evaluate
import model as M
import st

EOS = "<｜end▁of▁sentence｜>"
R1_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "r1_chat_template.jinja")


def make_config(vocab_size, a):
    return {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 1,
        "hidden_act": "silu", "initializer_range": 0.02, "tie_word_embeddings": False, "use_cache": True,
        "torch_dtype": "bfloat16", "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "vocab_size": vocab_size, "hidden_size": a.hidden, "intermediate_size": a.hidden * 3,
        "moe_intermediate_size": a.moe_inter, "num_hidden_layers": a.layers, "first_k_dense_replace": 1,
        "moe_layer_freq": 1, "num_attention_heads": a.heads, "num_key_value_heads": a.heads,
        "q_lora_rank": a.hidden // 2, "kv_lora_rank": a.hidden // 4, "qk_nope_head_dim": a.hidden // a.heads,
        "qk_rope_head_dim": 16, "v_head_dim": a.hidden // a.heads,
        "n_routed_experts": a.experts, "n_shared_experts": 1, "num_experts_per_tok": 2,
        "n_group": 4, "topk_group": 2, "routed_scaling_factor": 2.5, "norm_topk_prob": True,
        "scoring_func": "sigmoid", "topk_method": "noaux_tc", "aux_loss_alpha": 0.0, "seq_aux": True,
        "ep_size": 1, "max_position_embeddings": 2048, "num_nextn_predict_layers": 1,
        "rope_scaling": {"type": "yarn", "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    }


def init_weights(net, std):
    for name, p in net.named_parameters():
        if p.dim() >= 2:
            torch.nn.init.normal_(p, 0.0, std)
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                p.data /= math.sqrt(2 * net.n_layers)


def batch_iter(rng, tok, batch, pool=8):
    """Yields (tokens [B, L], main-loss mask [B, L]); sequences of similar length batched together."""
    eos = tok.specials[EOS]
    while True:
        seqs = []
        for _ in range(batch * pool):
            ex = data.make_example(rng)
            prompt = tok.encode(evaluate.PROMPT.format(q=ex["question"]))
            seqs.append((prompt, tok.encode(data.assistant_text(ex)) + [eos]))
        seqs.sort(key=lambda s: len(s[0]) + len(s[1]))
        chunks = [seqs[i:i + batch] for i in range(0, len(seqs), batch)]
        rng.shuffle(chunks)
        for ch in chunks:
            L = max(len(p) + len(r) for p, r in ch)
            x = torch.full((len(ch), L), eos, dtype=torch.long)
            m = torch.zeros((len(ch), L), dtype=torch.bool)
            for i, (p, r) in enumerate(ch):
                x[i, :len(p) + len(r)] = torch.tensor(p + r)
                m[i, len(p):len(p) + len(r)] = True       # predict answer tokens (and the final eos)
            yield x, m


def export(net, tok, cfg, out):
    os.makedirs(out, exist_ok=True)
    sd = {}
    for k, v in net.hub_state_dict().items():
        sd[k] = v.float() if k.endswith("e_score_correction_bias") else v.to(torch.bfloat16)
    st.save(sd, f"{out}/model.safetensors", {"format": "pt"})
    with open(f"{out}/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    with open(f"{out}/generation_config.json", "w") as f:
        json.dump({"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 1, "do_sample": False}, f, indent=2)
    bpe.save(tok, out, open(R1_TEMPLATE, encoding="utf-8").read(), cfg["max_position_embeddings"])


def load_exported(folder):
    """The exported model as PyTorch evaluates it: bf16 weights widened to fp32."""
    cfg = json.load(open(f"{folder}/config.json"))
    net = M.DeepseekV3(cfg)
    w = st.load(f"{folder}/model.safetensors")
    net.load_hub_state_dict({k: v.float() for k, v in w.items()})
    return net.eval(), cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="export folder (hub layout)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--moe-inter", type=int, default=96)
    ap.add_argument("--mtp-weight", type=float, default=0.3, help="MTP loss weight (lambda of the V3 report)")
    ap.add_argument("--bias-speed", type=float, default=1e-3, help="bias update speed (gamma of the V3 report)")
    ap.add_argument("--eval", type=int, default=500, help="evaluate 100 held-out problems every N steps")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--ckpt", default="", help="save/resume training state here")
    ap.add_argument("--export-only", action="store_true", help="export the model saved in --ckpt and stop")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rng = random.Random(a.seed)
    texts = []
    for _ in range(4000):
        ex = data.make_example(rng)
        texts += [ex["question"], data.assistant_text(ex)]
    tok = bpe.Tokenizer(bpe.train(texts, 2048))
    cfg = make_config(int(math.ceil(len(tok) / 64) * 64), a)
    net = M.DeepseekV3(cfg).to(dev)
    init_weights(net, cfg["initializer_range"])
    n_params = sum(p.numel() for p in net.parameters())
    print(f"vocab {len(tok)} (config {cfg['vocab_size']}), parameters {n_params / 1e6:.2f}M, device {dev}", flush=True)

    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    other = [p for n, p in net.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    warm = max(a.steps // 30, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps))))
    step = 0
    if a.ckpt and os.path.exists(a.ckpt):
        s = torch.load(a.ckpt)
        net.load_state_dict(s["net"]), opt.load_state_dict(s["opt"]), sched.load_state_dict(s["sched"])
        step, rng = s["step"], s["rng"]
        torch.set_rng_state(s["torch_rng"])
        print(f"resumed at step {step}", flush=True)
    if a.export_only:
        a.steps = step
    it = batch_iter(rng, tok, a.batch)
    evset = data.test_set(100, seed=99)
    t0, tokens_seen = time.time(), 0
    while step < a.steps:
        net.train()
        x, m = next(it)
        x, m = x.to(dev), m.to(dev)
        h, logits = net(x)
        loss = F.cross_entropy(logits[:, :-1][m[:, 1:]], x[:, 1:][m[:, 1:]])
        mtp_logits = net.forward_mtp(h[:, :-1], x[:, 1:])                # row i predicts token i+2
        mm = m[:, 2:]
        mtp_loss = F.cross_entropy(mtp_logits[:, :-1][mm], x[:, 2:][mm])
        opt.zero_grad(set_to_none=True)
        (loss + a.mtp_weight * mtp_loss).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        # Auxiliary-loss-free balancing (DeepSeek-V3 report §2.1.2): after each step, raise the bias of experts
        # that got fewer tokens than the mean and lower it for those that got more, by a fixed speed gamma.
        with torch.no_grad():
            for moe in net.moe_layers():
                ids = moe.last_ids
                load = torch.bincount(ids.flatten(), minlength=moe.gate.E).float()
                moe.gate.e_score_correction_bias += a.bias_speed * torch.sign(load.mean() - load)
        step += 1
        tokens_seen += int(x.numel())
        if step % 25 == 0:
            el = time.time() - t0
            print(f"step {step} loss {loss.item():.4f} mtp {mtp_loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{tokens_seen / el:.0f} tok/s {el / 60:.1f} min", flush=True)
        if step % a.eval == 0 or step == a.steps:
            net.eval()
            acc, texts, _ = evaluate.accuracy(net, tok, evset, max_new=320)
            print(f"step {step} held-out accuracy {acc:.3f}", flush=True)
            if a.ckpt:
                torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "step": step, "rng": rng, "torch_rng": torch.get_rng_state()}, a.ckpt)
    net = net.cpu().eval()
    export(net, tok, cfg, a.out)
    print(f"exported to {a.out}", flush=True)


if __name__ == "__main__":
    main()
