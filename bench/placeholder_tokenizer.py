"""A placeholder tokenizer.json for a random-weight model (peer_decode.py
--save writes none): byte-level BPE, the 256 byte tokens and then filler
tokens up to the vocabulary size, no merges. Token-id prompts decode to
text through it, so that a server can stream the text of what it makes.

  python3 placeholder_tokenizer.py MODEL_DIR   (reads vocab_size from config.json)
"""
import json, os, sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def byte_chars():
    # GPT-2's byte-to-unicode table: printable bytes as themselves, the rest
    # shifted past 255.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def main():
    d = sys.argv[1]
    n = json.load(open(os.path.join(d, "config.json")))["vocab_size"]
    vocab = {c: i for i, c in enumerate(byte_chars())}
    for i in range(len(vocab), n):
        vocab[f"<t{i}>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(os.path.join(d, "tokenizer.json"))
    print(f"{d}/tokenizer.json: {n} tokens")


if __name__ == "__main__":
    main()
