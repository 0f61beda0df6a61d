"""A tiny, deterministic, download-free corpus for the demo and the tests.

Documents are generated from a small hand-written grammar with a seeded ``random.Random``
(stable across Python versions and machines), so the demo needs no network and copies no
text from anywhere. The text mixes plain English, punctuation, digits, accented Latin,
a little CJK and the odd emoji, so a small byte-fallback tokenizer meets every case the
byte accounting must handle: pieces with and without a leading "▁", multi-byte characters
and byte-fallback pieces.

Layout written by ``build_demo_dataset`` (the challenge's names, so its scripts find them):

    ROOT/data/tokenizers/demo_sp<V>_bpe.model
    ROOT/data/datasets/demo_sp<V>/fineweb_val_000000.bin      (the first documents)
    ROOT/data/datasets/demo_sp<V>/fineweb_train_00000N.bin    (the rest, disjoint)
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .shards import write_shard

NOUNS = ("model", "token", "river", "garden", "engine", "signal", "window", "market", "bridge", "teacher",
         "planet", "record", "forest", "letter", "circuit", "harbor", "library", "pattern", "village", "answer",
         "compass", "lantern", "mirror", "ocean", "pilot", "question", "recipe", "season", "theory", "voyage")
ADJECTIVES = ("small", "bright", "quiet", "ancient", "rapid", "careful", "golden", "strange", "simple", "hidden",
              "gentle", "narrow", "heavy", "early", "patient", "distant", "clever", "fragile", "honest", "silver")
VERBS_PAST = ("found", "carried", "measured", "painted", "followed", "counted", "opened", "built", "watched",
              "described", "trained", "compressed", "scored", "crossed", "repaired", "predicted", "wrote", "named")
VERBS = ("find", "carry", "measure", "follow", "count", "open", "build", "watch", "train", "compress", "predict")
ADVERBS = ("slowly", "quickly", "carefully", "quietly", "rarely", "often", "gladly", "barely", "nearly")
PREPOSITIONS = ("near", "behind", "across", "under", "beyond", "inside", "along", "before")
NAMES = ("Ada", "Bruno", "Chen", "Dalia", "Emil", "Fatima", "Goran", "Hiro", "Ines", "José", "Zoë", "Søren",
         "Ünal", "Łukasz", "François", "Ngọc")
PLACES = ("the valley", "the old mill", "the north gate", "the station", "the coast", "Zürich", "Kraków",
          "São Paulo", "Reykjavík", "東京", "서울", "Αθήνα")
RARE = ("🙂", "🚀", "½", "€", "→", "数据", "ß", "æ", "§", "©", "°C", "™")


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _sentence(rng: random.Random) -> str:
    noun, noun2 = rng.choice(NOUNS), rng.choice(NOUNS)
    adj = rng.choice(ADJECTIVES)
    pattern = rng.randrange(8)
    if pattern == 0:
        text = f"The {adj} {noun} {rng.choice(VERBS_PAST)} the {noun2} {rng.choice(PREPOSITIONS)} {rng.choice(PLACES)}."
    elif pattern == 1:
        text = f"{rng.choice(NAMES)} said that the {noun} was {adj} and {rng.choice(ADJECTIVES)}."
    elif pattern == 2:
        text = f"In {rng.randint(1850, 2030)}, {rng.randint(2, 999)} {_plural(noun)} {rng.choice(VERBS_PAST)} {rng.choice(PLACES)}."
    elif pattern == 3:
        text = f"Why does the {noun} {rng.choice(VERBS)} the {noun2} so {rng.choice(ADVERBS)}?"
    elif pattern == 4:
        text = f"\"We {rng.choice(VERBS_PAST)} {rng.randint(1, 64)} {_plural(noun)},\" {rng.choice(NAMES)} wrote, \"and the {noun2} {rng.choice(VERBS_PAST)} us.\""
    elif pattern == 5:
        text = f"Each {noun} costs {rng.randint(1, 500)}.{rng.randint(0, 99):02d} (about {rng.randint(1, 9)}% of the {noun2})."
    elif pattern == 6:
        text = f"{rng.choice(NAMES)} and {rng.choice(NAMES)} {rng.choice(VERBS_PAST)} a {adj} {noun} {rng.choice(ADVERBS)}."
    else:
        text = f"The {noun} of {rng.choice(PLACES)} is {adj}; the {noun2} is not."
    if rng.random() < 0.04:
        text += f" {rng.choice(RARE)}"
    return text


def generate_documents(seed: int, count: int, min_sentences: int = 3, max_sentences: int = 14) -> list[str]:
    """``count`` documents from the grammar, identical for the same seed on every machine."""
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        title = f"{rng.choice(ADJECTIVES).capitalize()} {_plural(rng.choice(NOUNS))} of {rng.choice(PLACES)}"
        paragraphs = []
        for _ in range(rng.randint(1, 3)):
            sentences = [_sentence(rng) for _ in range(rng.randint(min_sentences, max_sentences))]
            paragraphs.append(" ".join(sentences))
        documents.append(title + "\n" + "\n".join(paragraphs))
    return documents


def train_tokenizer(texts: list[str], vocab_size: int, model_path: str | Path, *, byte_fallback: bool = True,
                    add_dummy_prefix: bool = True, character_coverage: float = 0.999,
                    model_type: str = "bpe") -> Path:
    """Train a sentencepiece model on ``texts`` (one line per input sentence), deterministically.

    Ids: <unk>=0, <s> (BOS)=1, </s>=2, as in the challenge's tokenizers."""
    import sentencepiece as spm

    lines = [line for text in texts for line in text.split("\n") if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type=model_type,
        byte_fallback=byte_fallback, add_dummy_prefix=add_dummy_prefix, character_coverage=character_coverage,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, hard_vocab_limit=False, split_digits=True, minloglevel=2)
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(model.getvalue())
    return model_path


def encode_documents(sp, documents: list[str]) -> np.ndarray:
    """BOS + ids of each document, concatenated (the challenge's shard layout)."""
    bos = sp.bos_id()
    if bos < 0:
        raise ValueError("tokenizer has no BOS id; documents could not be separated")
    ids: list[int] = []
    for encoded in sp.encode(documents):
        ids.append(bos)
        ids.extend(encoded)
    return np.asarray(ids, dtype=np.uint16)


@dataclass(frozen=True)
class DemoData:
    root: Path
    tokenizer_path: Path
    dataset_path: Path
    vocab_size: int
    train_tokens: int
    val_tokens: int
    val_documents: int

    @property
    def val_pattern(self) -> str:
        return str(self.dataset_path / "fineweb_val_*.bin")


def build_demo_dataset(root: str | Path, *, seed: int = 0, vocab_size: int = 512, val_documents: int = 120,
                       train_documents: int = 1600, train_shard_tokens: int = 200_000,
                       tokenizer_documents: int = 600) -> DemoData:
    """Generate documents, train a tokenizer on training documents only, write shards."""
    import sentencepiece as spm

    root = Path(root)
    documents = generate_documents(seed, val_documents + train_documents)
    val_docs, train_docs = documents[:val_documents], documents[val_documents:]
    name = f"demo_sp{vocab_size}"
    tokenizer_path = train_tokenizer(train_docs[:tokenizer_documents], vocab_size,
                                     root / "data" / "tokenizers" / f"{name}_bpe.model")
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    dataset_path = root / "data" / "datasets" / name
    val = encode_documents(sp, val_docs)
    train = encode_documents(sp, train_docs)
    write_shard(dataset_path / "fineweb_val_000000.bin", val)
    for index, start in enumerate(range(0, train.size, train_shard_tokens)):
        write_shard(dataset_path / f"fineweb_train_{index:06d}.bin", train[start:start + train_shard_tokens])
    return DemoData(root, tokenizer_path, dataset_path, int(sp.get_piece_size()), int(train.size), int(val.size),
                    val_documents)
