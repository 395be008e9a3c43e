#!/usr/bin/python3
"""Writes tokens.json: CLIP token ids for tricky prompts, computed by a
straightforward Python rendering of CLIP's tokenizer that uses the `regex`
module for CLIP's split pattern (Debian: python3-regex). The Go tests compare
the hand-written scanner and BPE against these ids; they need no Python.

Run from this folder: /usr/bin/python3 gen_tokens.py ../../../../shared/data/clip
"""
import json
import sys

import regex

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def byte_table():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def main(folder):
    vocab = json.load(open(folder + "/vocab.json", encoding="utf-8"))
    lines = open(folder + "/merges.txt", encoding="utf-8").read().strip().split("\n")
    lines = lines[1 : 49152 - 256 - 2 + 1]
    rank = {tuple(l.split()): i for i, l in enumerate(lines)}
    table = byte_table()

    def bpe(piece):
        if piece in ("<|startoftext|>", "<|endoftext|>"):
            return [piece]
        parts = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(parts) > 1:
            cands = [(rank[(a, b)], (a, b)) for a, b in zip(parts, parts[1:]) if (a, b) in rank]
            if not cands:
                break
            _, (a, b) = min(cands)
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    def encode(text):
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = [vocab["<|startoftext|>"]]
        for piece in PATTERN.findall(text):
            mapped = "".join(table[b] for b in piece.encode("utf-8"))
            ids += [vocab.get(p, vocab["<|endoftext|>"]) for p in bpe(mapped)]
        return ids + [vocab["<|endoftext|>"]]

    prompts = [
        "a photo of a cat",
        "Hello, world!",
        "",
        "Hi there",
        "a painting of a cat",
        "  lots   of\tspace\n\nand\r\nlines  ",
        "don't stop, it's what we're doing; they've I'm we'll he'd",
        "''s '' 'S IT'S",
        "3.14159 and 1234567 and ٣٤ and ½",
        "naïve café résumé Ærøskøbing",
        "猫の写真 and 한국어 and Ελληνικά and русский",
        "emoji 😀👍🏽 and ♥ ★",
        "hello<|endoftext|>world <|startoftext|>x",
        "<|ENDOFTEXT|> shouting",
        "!!!??? ... --- ### &amp; <b>html</b>",
        "a_b-c.d/e\\f",
        "tab\u00a0nbsp\u2003emspace\u200bzwsp\u001cfs",
        "zzzzzzzzzzzzzzzzzzzzzzzzzqqqqqqqq xylophonist's antidisestablishmentarianism",
        "combining e\u0301 and ﬁ ligature and Ｆｕｌｌｗｉｄｔｈ",
        "stone brick wall, seamless texture, 4k, highly detailed, trending on artstation",
    ]
    cases = [{"text": p, "ids": encode(p)} for p in prompts]
    sys.stdout.write('{"cases": [\n')
    sys.stdout.write(",\n".join(json.dumps(c, ensure_ascii=True) for c in cases))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main(sys.argv[1])
