#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/<target>/): small valid inputs of each
format and a few damaged ones, so that fuzzing starts from files that reach deep into each parser.
The JPEG seeds (image/*.jpg) were written once with libjpeg-turbo (8x6 RGB and 5x4 grey, quality 90)
and are kept as they are. Run from anywhere: python3 tests/fuzz/make_seeds.py"""
import gzip
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(header, data=b""):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


# safetensors: one tensor of each dtype family, metadata, an empty file, a truncated one.
write("safetensors", "f32.safetensors",
      safetensors({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, struct.pack("<6f", *range(6))))
write("safetensors", "mixed.safetensors",
      safetensors({"__metadata__": {"format": "pt"},
                   "steps": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
                   "h": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},
                   "b": {"dtype": "BF16", "shape": [], "data_offsets": [12, 14]}},
                  struct.pack("<q", 7) + struct.pack("<2H", 0x3C00, 0xC000) + struct.pack("<H", 0x3F80)))
write("safetensors", "empty.safetensors", safetensors({}))
write("safetensors", "truncated.safetensors",
      safetensors({"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}, b"\0" * 20))

# checkpoint: the lines format_version, step, generators, extra.
write("checkpoint", "valid.txt", '1\n12\n{"init":{"seed":1,"offset":2},"data":{"seed":3,"offset":0}}\n'
      '{"config":{"lr":0.001,"layers":2},"data_position":{"epoch":0,"block":5}}')
write("checkpoint", "minimal.txt", "1\n0\n{}\n{}")
write("checkpoint", "bad_version.txt", "2\n-1\n[]\n\"x\"")

# model_config: GPT and ViT model configs, the language model's and the ViT's run configs.
write("model_config", "gpt.json", json.dumps({"vocab_size": 300, "context": 16, "layers": 1, "channels": 32,
                                              "heads": 2, "position_encoding": "rope"}))
write("model_config", "vit.json", json.dumps({"image_size": 28, "patch": 7, "in_channels": 1, "num_classes": 10,
                                              "width": 32, "depth": 1, "heads": 2}))
write("model_config", "lm_run.json", json.dumps({"layers": 1, "channels": 32, "heads": 2, "context": 16,
                                                 "pe": "seqpe", "seqpe": {"encoder": {"layers": 1}},
                                                 "seqpe_max_position": 1000}))
with open(os.path.join(ROOT, "..", "apps", "vit_smoke.json")) as f:
    write("model_config", "vit_run.json", f.read())

# set_assignment: --set lines as train_lm reads them.
write("set_assignment", "numbers.txt", "channels=32\nheads=2\nlr=3e-4\nsteps=6\nseed=18446744073709551615")
write("set_assignment", "objects.txt", 'seqpe={"encoder":{"layers":2}}\nseqpe_layers=1\npe=rope\nout=runs/x')
write("set_assignment", "lists.txt", "128,256,512\nchannels=33.9\n=5\nx")

# idx: labels (rank 1), images (rank 3), gzip-compressed images.
labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes(range(5))
images = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 4) + bytes(range(24))
write("idx", "labels.idx", labels)
write("idx", "images.idx", images)
write("idx", "images.idx.gz", gzip.compress(images, mtime=0))

# tokenizer_files: vocab.json, NUL, merges.txt (GPT-2's byte mapping, two merges, <|endoftext|>).
def byte_text():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    extra = [b for b in range(256) if b not in keep]
    order = keep + extra
    return [chr(b) if b in keep else chr(256 + extra.index(b)) for b in order]

tokens = byte_text() + ["he", "in", "<|endoftext|>"]
vocab = json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False).encode()
write("tokenizer_files", "tiny.txt", vocab + b"\0#version: 0.2\nh e\ni n\n")
write("tokenizer_files", "no_merges.txt", json.dumps({t: i for i, t in enumerate(byte_text())},
                                                     ensure_ascii=False).encode() + b"\0")

# token_file: 2-byte and 4-byte tokens, and a header that claims more tokens than follow.
def token_file(vocab_size, width, tokens, count=None):
    header = b"SEQPETOK" + struct.pack("<IIIIQ", 1, vocab_size, width, 0, len(tokens) if count is None else count)
    return header + b"".join(struct.pack("<H" if width == 2 else "<I", t) for t in tokens)

write("token_file", "u16.tokens", token_file(300, 2, [1, 2, 299, 0]))
write("token_file", "u32.tokens", token_file(70000, 4, [69999, 5]))
write("token_file", "short.tokens", token_file(300, 2, [1], count=3))

# squad: SQuAD v1.1 JSON and the authors' jsonl.
write("squad", "squad.json", json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
    {"context": "The sky is blue.", "qas": [{"id": "q1", "question": "What colour is the sky?",
                                             "answers": [{"text": "blue", "answer_start": 11}]}]}]}]}))
write("squad", "qa.jsonl", json.dumps({"input": "Context: a b. Question: b?", "outputs": ["b"]}) + "\n" +
      json.dumps({"input": "x", "outputs": "y"}) + "\n")

# image: PNGs (grey, RGB, RGBA) written by hand.
def png(width, height, colour_type, channels):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes((x * 37 + y * 11 + c * 5) % 256 for x in range(width) for c in range(channels))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

write("image", "grey.png", png(5, 4, 0, 1))
write("image", "rgb.png", png(8, 6, 2, 3))
write("image", "rgba.png", png(3, 3, 6, 4))
