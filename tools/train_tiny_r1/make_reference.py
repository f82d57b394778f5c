# SPDX-License-Identifier: MIT
"""Evaluates an exported tiny-R1 with PyTorch and writes what the C++ tests compare against:

  <fixtures>/tokens.npy, prompt.npy     a question + its answer (teacher-forced), and the question's prompt ids
  <fixtures>/logits.npy, mtp_logits.npy fp32 logits of every position (main head, MTP head) from the bf16 weights
  <fixtures>/greedy.npy                 greedy continuation of the prompt, through the end-of-sentence token
  <fixtures>/heldout.jsonl              the 1,000 held-out problems with PyTorch's greedy correctness
  <model>/eval.json                     accuracy on 1,000 held-out problems, MTP top-1, expert load

    python3 make_reference.py ../../models/tiny-r1 ../../tests/fixtures/tiny-r1 [N_TEST] [--greedy-only]

--greedy-only writes greedy.npy alone (the other files stay as they are).
"""
import json
import os
import sys

import numpy as np
import torch

import bpe
import data
import evaluate
import train


def main(model_dir, fix_dir, n_test=1000, greedy_only=False):
    torch.manual_seed(0)
    net, cfg = train.load_exported(model_dir)
    tok = bpe.load(model_dir)
    os.makedirs(fix_dir, exist_ok=True)
    eos = tok.specials["<｜end▁of▁sentence｜>"]

    ex = {"question": "What is 347+589?"}
    ex["reasoning"], ex["result"] = data.reasoning("+", 347, 589)
    ex["answer"] = f"347+589 = {ex['result']}"
    prompt = tok.encode(evaluate.PROMPT.format(q=ex["question"]))
    tokens = prompt + tok.encode(data.assistant_text(ex)) + [eos]
    with torch.no_grad():
        x = torch.tensor([tokens])
        h, logits = net(x)
        mtp = net.forward_mtp(h[:, :-1], x[:, 1:])
        caches = [dict() for _ in range(cfg["num_hidden_layers"])]
        _, lg = net(torch.tensor([prompt]), 0, caches)
        greedy, pos = [], len(prompt)
        while len(greedy) < 400:  # the whole answer: up to and including the end-of-sentence token
            t = int(lg[0, -1].argmax())
            greedy.append(t)
            if t == eos:
                break
            _, lg = net(torch.tensor([[t]]), pos, caches)
            pos += 1
    np.save(f"{fix_dir}/greedy.npy", np.array(greedy, np.int64))
    if greedy_only:
        return
    np.save(f"{fix_dir}/tokens.npy", np.array(tokens, np.int64))
    np.save(f"{fix_dir}/prompt.npy", np.array(prompt, np.int64))
    np.save(f"{fix_dir}/logits.npy", logits[0].numpy().astype(np.float32))
    np.save(f"{fix_dir}/mtp_logits.npy", mtp[0].numpy().astype(np.float32))

    problems = data.test_set(n_test)
    acc, texts, correct = evaluate.accuracy(net, tok, problems)
    with open(f"{fix_dir}/heldout.jsonl", "w") as f:
        for p, ok in zip(problems, correct):
            f.write(json.dumps({"question": p["question"], "result": p["result"], "torch_correct": ok}) + "\n")
    by_op = {}
    for p, ok in zip(problems, correct):
        by_op.setdefault(p["op"], []).append(ok)
    mtp_acc, loads = evaluate.mtp_and_load(net, tok, problems)
    k = cfg["num_experts_per_tok"]
    report = {
        "heldout_problems": n_test,
        "greedy_accuracy": acc,
        "accuracy_by_op": {op: sum(v) / len(v) for op, v in by_op.items()},
        "mtp_top1_token_after_next": mtp_acc,
        "expert_tokens_per_moe_layer": loads,
        "max_share_over_fair": [max(l) / (sum(l) / len(l)) for l in loads],
        "note": f"fair share = routed slots / experts (each token takes {k} slots)",
    }
    with open(f"{model_dir}/eval.json", "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    bad = [(p["question"], t) for p, t, ok in zip(problems, texts, correct) if not ok][:5]
    for q, t in bad:
        print("WRONG:", q, "->", t.split("</think>")[-1].strip()[:80])


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--greedy-only"]
    main(args[0], args[1], *(int(v) for v in args[2:3]), greedy_only="--greedy-only" in sys.argv)
