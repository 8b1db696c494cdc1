"""A character-level tokenizer for the embedded toy world, built offline with ``tokenizers``.

Every character of :data:`ALPHABET` is one token; the result is saved as a
``PreTrainedTokenizerFast`` so ``AutoTokenizer``, lm-eval and vLLM load it by path. With
``chat=True`` it also gets Qwen-style ``<|im_start|>``/``<|im_end|>`` tokens and a chat template
(used by the CPU stand-in of the paper setting, ``.test/config-paper``).
"""

from __future__ import annotations

import string
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
# digits + A-Z cover mod-16 and mod-24 numerals; a-z the probe's letters; the rest the task syntax
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase + "@$!=,#.+-*:? \n"
# every printable ASCII character: enough for real math text (\boxed{...}, $...$) in the paper-path tests
ASCII_ALPHABET = "".join(c for c in string.printable if c not in "\t\r\x0b\x0c")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_char_tokenizer(alphabet: str = ALPHABET, *, chat: bool = False) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with one token per character of ``alphabet`` (no BOS added).

    ``chat=True`` adds the chat tokens, a Qwen-style chat template, and makes ``<|im_end|>`` the EOS.
    """
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + (CHAT_TOKENS if chat else ()))}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # type: ignore[attr-defined]
    tok.decoder = decoders.Fuse()  # type: ignore[attr-defined]
    if chat:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_TOKENS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<|im_end|>" if chat else "<eos>", unk_token="<unk>",
                                   padding_side="left")  # decoder-only generation pads on the left
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def save_char_tokenizer(out_dir: str | Path, alphabet: str = ALPHABET, *, chat: bool = False
                        ) -> PreTrainedTokenizerFast:
    """Build the tokenizer and ``save_pretrained`` it into ``out_dir``."""
    tok = build_char_tokenizer(alphabet, chat=chat)
    tok.save_pretrained(str(out_dir))
    return tok
