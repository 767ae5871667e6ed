#!/usr/bin/env python3
"""kiln's tokenizer against pip's `tokenizers` on a multilingual corpus.

Trains, with `tokenizers` itself, one tokenizer.json of each kind kiln
supports, laid out as the real models' files are:

  gpt2       ByteLevel pre-tokenizer with its regex split, ByteLevel decoder
  llama3     Split on Llama 3's regex, then ByteLevel without regex;
             ignore_merges; special added tokens (<|begin_of_text|>, ...)
  qwen2      NFC normalizer, Split on Qwen2's regex (single digits), ByteLevel
  llama2     SentencePiece-style: Prepend/Replace normalizers, BPE with
             byte_fallback and <0xXX> tokens, Replace/ByteFallback/Fuse/Strip
             decoder (Llama 2, Mistral)
  metaspace  a Metaspace pre-tokenizer and decoder (newer SentencePiece
             conversions)

then encodes every text of the corpus (English, German, French, Spanish,
Russian, Greek, Arabic, Hebrew, Hindi, Chinese, Japanese, Korean, Thai,
emoji, code, numbers, whitespace runs, special tokens inside text) with both,
and decodes kiln's ids with both. Ids and decoded text must be identical.

  check_tokenizers.py --bin build/bin
"""
import argparse, json, os, subprocess, sys, tempfile

import unicodedata
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, Regex

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 12:45, and we'll see what they've done.",
    "Hello, world! How are you doing today? I'm fine -- thanks for asking.",
    "Übermäßig große Straßen führen durch die Stadt; Größe zählt nicht immer.",
    "Le garçon a mangé une crème brûlée à l'hôtel près de la forêt.",
    "¿Dónde está la biblioteca? ¡Está allí, señor!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από το τεμπέλικο σκυλί.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "我们在北京的一家小餐馆吃了晚饭，然后去看电影。",
    "東京は日本の首都です。ひらがなとカタカナと漢字。",
    "안녕하세요, 세계! 오늘 날씨가 좋네요.",
    "สวัสดีชาวโลก ยินดีที่ได้รู้จัก",
    "Emoji: 😀🎉👍🏽 and flags 🇩🇪🇯🇵, plus ZWJ 👨‍👩‍👧‍👦.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { sum += a[i] * b[i]; }  // dot product",
    "Numbers: 1234567890, 3.14159, -42, 1e-10, 0x1F, 2026-11-23.",
    "In 2023 and 2024, 12345 people paid 678.90 each: 1000000 in all, 31415926535 digits, 99999999.",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\r\nand  double  spaces\n\n\nend",
    "Mixed: café naïve coöperate résumé Zürich São Paulo Kraków İstanbul.",
    "URLs https://example.com/path?query=1&x=y#frag and emails a.b@c.de",
    "ALL CAPS SHOUTING and CamelCaseWords and snake_case_words",
    "Punctuation!!! ??? ... --- *** ((())) [[[]]] {{{}}} <<<>>>",
    "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = ∫ f(x) dx ≈ 3.0 × 10⁸",
    "quotes “curly” ‘single’ «guillemets» „German“",
    "Tiếng Việt có dấu: Tôi yêu Việt Nam.",
    "Ελληνικά και English mixed με 123 αριθμούς.",
    # Decomposed (NFD) and unordered text: the NFC normalizer (qwen2 here)
    # must compose it as tokenizers does; the others see it as it is.
    unicodedata.normalize("NFD", "Übermäßig café naïve crème brûlée, Tiếng Việt, 안녕하세요, がぎぐ, Å."),
    "q\u0307\u0323 e\u0301\u0327 \u212b \u0958 \u0344 \u0b47\u0b3e x\u0301\u0301 \u1100\u1161\u11a8 \u0301lone",
]
# Texts with the special tokens inside them, for the tokenizers that have them.
SPECIAL_TEXTS = [
    "<|begin_of_text|>Hello<|eot_id|> world",
    "a<|eot_id|><|eot_id|>b",
]
EXTRA = ["", " ", "\n", "a", "ab", "  a  b  ", "x" * 300, "日本" * 50]


def train(kind, tmp):
    if kind in ("gpt2", "llama3", "qwen2"):
        tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
        if kind == "gpt2":
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        else:
            pattern = LLAMA3_SPLIT if kind == "llama3" else QWEN2_SPLIT
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        if kind == "qwen2":
            tok.normalizer = normalizers.NFC()
        tok.decoder = decoders.ByteLevel()
        special = ["<|begin_of_text|>", "<|eot_id|>"] if kind == "llama3" else ["<|endoftext|>"]
        trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=special,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind == "llama2":
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
        special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=1400, special_tokens=special, show_progress=False,
                                      limit_alphabet=200)
    else:  # metaspace
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=1400, special_tokens=special, show_progress=False,
                                      limit_alphabet=200)
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    path = os.path.join(tmp, kind + ".json")
    tok.save(path)
    return tok, path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    failures, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("gpt2", "llama3", "qwen2", "llama2", "metaspace"):
            tok, path = train(kind, tmp)
            texts = CORPUS + EXTRA + (SPECIAL_TEXTS if kind == "llama3" else [])
            tpath = os.path.join(tmp, kind + ".texts.json")
            with open(tpath, "w") as f:
                json.dump(texts, f, ensure_ascii=False)
            r = subprocess.run([os.path.join(args.bin, "kiln-tokenize"), path, tpath], capture_output=True,
                               text=True)
            if r.returncode != 0:
                failures.append(f"{kind}: kiln-tokenize failed: {r.stderr.strip()}")
                continue
            got = json.loads(r.stdout)
            same_ids = same_text = 0
            for i, t in enumerate(texts):
                want = tok.encode(t, add_special_tokens=False).ids
                if got["ids"][i] == want:
                    same_ids += 1
                else:
                    failures.append(f"{kind}: text {i} {t[:40]!r}: ids {got['ids'][i][:20]} != {want[:20]}")
                want_text = tok.decode(got["ids"][i], skip_special_tokens=False)
                if got["decoded"][i] == want_text:
                    same_text += 1
                else:
                    failures.append(f"{kind}: text {i}: decoded {got['decoded'][i][:40]!r} != {want_text[:40]!r}")
            rows.append((kind, tok.get_vocab_size(), len(texts), same_ids, same_text))
    print(f"{'tokenizer':10} {'vocab':>6} {'texts':>6} {'ids same':>9} {'text same':>9}")
    for r in rows:
        print(f"{r[0]:10} {r[1]:6d} {r[2]:6d} {r[3]:9d} {r[4]:9d}")
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures[:30]))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
