# SPDX-License-Identifier: MIT
"""Greedy evaluation on held-out problems (KV-cached, batched by prompt length), MTP accuracy, expert load."""
import collections
import re

import torch

import data

PROMPT = "<｜begin▁of▁sentence｜><｜User｜>{q}<｜Assistant｜><think>\n"  # R1 template, one user turn


def parse_answer(text):
    """The integer after the last '=' of the text after </think>, or None."""
    if "</think>" not in text:
        return None
    m = re.findall(r"=\s*(-?\d+)", text.split("</think>")[-1])
    return int(m[-1]) if m else None


@torch.no_grad()
def generate(net, tok, questions, max_new=400, batch=128):
    """Greedy completions (text after the prompt, up to end of sentence) for each question."""
    eos = tok.specials["<｜end▁of▁sentence｜>"]
    enc = [tok.encode(PROMPT.format(q=q)) for q in questions]
    groups = collections.defaultdict(list)
    for i, ids in enumerate(enc):
        groups[len(ids)].append(i)
    out = [None] * len(questions)
    n = net.cfg["num_hidden_layers"]
    for _, idx in sorted(groups.items()):
        for s in range(0, len(idx), batch):
            part = idx[s:s + batch]
            x = torch.tensor([enc[i] for i in part])
            caches = [dict() for _ in range(n)]
            _, lg = net(x, 0, caches)
            pos = x.shape[1]
            gen = []
            done = torch.zeros(len(part), dtype=torch.bool)
            for _ in range(max_new):
                t = lg[:, -1].argmax(-1)
                gen.append(t)
                done |= t == eos
                if bool(done.all()):
                    break
                _, lg = net(t[:, None], pos, caches)
                pos += 1
            g = torch.stack(gen, 1).tolist()
            for row, i in zip(g, part):
                if eos in row:
                    row = row[:row.index(eos)]
                out[i] = tok.decode(row)
    return out


def accuracy(net, tok, problems, **kw):
    texts = generate(net, tok, [p["question"] for p in problems], **kw)
    correct = [parse_answer(t) == p["result"] for t, p in zip(texts, problems)]
    return sum(correct) / len(problems), texts, correct


@torch.no_grad()
def mtp_and_load(net, tok, problems):
    """Top-1 accuracy of the MTP head on the token after next over the answers, and routed-token counts per expert
    for every MoE layer (main and MTP), over teacher-forced held-out sequences."""
    hits = total = 0
    loads = None
    for s in range(0, len(problems), 64):
        seqs, starts = [], []
        for p in problems[s:s + 64]:
            prompt = tok.encode(PROMPT.format(q=p["question"]))
            ids = prompt + tok.encode(data.assistant_text(p)) + [tok.specials["<｜end▁of▁sentence｜>"]]
            seqs.append(ids)
            starts.append(len(prompt))
        L = max(map(len, seqs))
        x = torch.tensor([q + [0] * (L - len(q)) for q in seqs])
        valid = torch.zeros_like(x, dtype=torch.bool)
        for i, q in enumerate(seqs):
            valid[i, :len(q)] = True
        h, _ = net(x)
        ml = net.forward_mtp(h[:, :-1], x[:, 1:])          # row i predicts token i+2
        pred = ml[:, :-1].argmax(-1)
        tgt = x[:, 2:]
        m = valid[:, 2:].clone()
        for i, st in enumerate(starts):
            m[i, :max(st - 2, 0)] = False                   # score answer positions only
        hits += int(((pred == tgt) & m).sum())
        total += int(m.sum())
        layer_loads = []
        for moe in net.moe_layers():
            ids = moe.last_ids.view(x.shape[0], -1, moe.gate.k)
            vv = valid[:, :ids.shape[1]].unsqueeze(-1).expand_as(ids)
            layer_loads.append(torch.bincount(ids[vv], minlength=moe.gate.E))
        loads = layer_loads if loads is None else [a + b for a, b in zip(loads, layer_loads)]
    return hits / max(total, 1), [l.tolist() for l in loads]
