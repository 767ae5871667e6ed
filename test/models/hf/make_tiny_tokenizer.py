#!/usr/bin/env python3
"""Writes test/models/hf/llama/tokenizer.json: a byte-level BPE with exactly
the tiny Llama's 512 ids (256 bytes, 255 merges, <|end_of_text|>), trained
with pip's tokenizers on the tokenizer test corpus, so `kiln-run --prompt`
works on the bundled model. The model's weights are random: the text it
generates is too.

  .venv/bin/python test/models/hf/make_tiny_tokenizer.py
"""
import os, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tokenizer"))
from check_tokenizers import CORPUS  # noqa: E402

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|end_of_text|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(CORPUS * 3, trainer=trainer)
assert tok.get_vocab_size() == 512, tok.get_vocab_size()
out = os.path.join(HERE, "llama", "tokenizer.json")
tok.save(out)
print(f"wrote {out}: {tok.get_vocab_size()} ids")
