# SPDX-License-Identifier: MIT
"""Checks model.py against the golden fixtures made with Hugging Face transformers (../shared/fixtures/models):
logits at every prompt position and MTP logits within 1e-3, greedy continuation identical (fp32)."""
import json
import sys

import numpy as np
import torch

import model as M
import st


def check(folder):
    cfg = json.load(open(f"{folder}/config.json"))
    w = st.load(f"{folder}/model.safetensors")
    sd = {}
    for k, v in w.items():
        if k.endswith("weight_scale_inv"):
            continue
        s = w.get(k + "_scale_inv")
        if s is not None:  # fp8 with 128x128 block scales
            r, c = v.shape
            s = s.float().repeat_interleave(128, 0)[:r].repeat_interleave(128, 1)[:, :c]
            v = v * s
        sd[k] = v.float()
    net = M.DeepseekV3(cfg).float()
    net.load_hub_state_dict(sd)
    net.eval()
    tokens = torch.from_numpy(np.load(f"{folder}/tokens.npy"))[None]
    ok = True
    with torch.no_grad():
        h, logits = net(tokens)
        ref = np.load(f"{folder}/logits.npy")
        d = np.abs(logits[0].numpy() - ref).max()
        print(f"{folder}: logits max |diff| {d:.2e}")
        ok &= d <= 1e-3
        n = cfg["num_hidden_layers"]
        try:
            mref = np.load(f"{folder}/mtp_logits.npy")
        except FileNotFoundError:
            mref = None
        if mref is not None:
            ml = net.forward_mtp(h[:, :-1], tokens[:, 1:], embed=sd[f"model.layers.{n}.embed_tokens.weight"],
                                 head=sd[f"model.layers.{n}.shared_head.head.weight"])
            d = np.abs(ml[0].numpy() - mref).max()
            print(f"{folder}: MTP logits max |diff| {d:.2e}")
            ok &= d <= 1e-3
        greedy = np.load(f"{folder}/greedy.npy")
        caches = [dict() for _ in range(n)]
        _, lg = net(tokens, 0, caches)
        pos, out = tokens.shape[1], []
        for _ in range(len(greedy)):
            t = int(lg[0, -1].argmax())
            out.append(t)
            _, lg = net(torch.tensor([[t]]), pos, caches)
            pos += 1
        same = out == greedy.tolist()
        print(f"{folder}: greedy {'identical' if same else 'DIFFERENT'}")
        ok &= same
    return ok


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "../../../shared/fixtures/models"
    results = [check(f"{root}/{name}") for name in ("tiny-v3", "tiny-v2-lite", "tiny-v2", "tiny-v3-fp8")]
    sys.exit(0 if all(results) else 1)
