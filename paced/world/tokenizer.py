"""A character-level tokenizer for the embedded toy world, built offline with ``tokenizers``.

Every character of :data:`ALPHABET` is one token; the result is saved as a
``PreTrainedTokenizerFast`` so ``AutoTokenizer``, lm-eval and vLLM load it by path.
"""

from __future__ import annotations

import string
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
# digits + A-Z cover mod-16 and mod-24 numerals; a-z the probe's letters; the rest the task syntax
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase + "@$!=,#.+-*:? \n"


def build_char_tokenizer(alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with one token per character of ``alphabet`` (no BOS added)."""
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # type: ignore[attr-defined]
    tok.decoder = decoders.Fuse()  # type: ignore[attr-defined]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<unk>",
                                   padding_side="left")  # decoder-only generation pads on the left
    return fast


def save_char_tokenizer(out_dir: str | Path, alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """Build the tokenizer and ``save_pretrained`` it into ``out_dir``."""
    tok = build_char_tokenizer(alphabet)
    tok.save_pretrained(str(out_dir))
    return tok
