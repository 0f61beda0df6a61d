"""Calibration profiles and the recorded 8xH100 SXM speed they are compared with (data).

A profile is a fixed configuration of the reference trainer (``reference_impl/trainer.py``,
bundled into a ``train_gpt.py``) run for a fixed number of timed steps; its milliseconds per
step here, divided by the recorded milliseconds per step on 8xH100 SXM, is the speed factor.

``baseline-9x512``: the challenge's baseline configuration (9 layers, width 512, 8 query / 4
key-value heads, MLP 2x, tied embeddings, vocabulary 1024, 524,288 tokens per step, sequence
1024, Muon + Adam), the configuration the reference trainer's defaults reproduce.
Reference: 43.54 ms/step on 8xH100 80GB HBM3, from the official baseline record
``records/track_10min_16mb/2026-03-17_NaiveBaseline/train.log`` (openai/parameter-golf at
4908dc46f): ``step:13780/20000 val_loss:2.0606 val_bpb:1.2172 train_time:600038ms
step_avg:43.54ms`` and ``stopping_early: wallclock_cap train_time:600038ms step:13780/20000``.
Caveat: that number is the baseline script's (torch.compile, its own Muon), not the reference
trainer's; the two train the same model on the same batch, and the profile compiles the model
too, but the factor is an estimate until the reference trainer's own 8xH100 time is recorded
here. The factor is only used to show normalized times next to raw ones, never to decide.

``tiny-cpu``: a 2-layer model for CPU machines and the tests; there is no 8xH100 number for
it, so it yields a speed in ms/step and no factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpeedReference:
    ms_per_step: float
    hardware: str
    source: str
    caveat: str


@dataclass(frozen=True)
class CalibrationProfile:
    name: str
    description: str
    vocab_size: int
    dataset: dict[str, int]          # keyword arguments of reference_impl.dataset.build_demo_dataset
    trainer_env: dict[str, str]      # environment of the reference trainer
    default_steps: int
    warmup_steps: int
    reference: SpeedReference | None = None
    seed: int = 1337
    notes: tuple[str, ...] = field(default_factory=tuple)

    def environment(self, steps: int) -> dict[str, str]:
        env = dict(self.trainer_env)
        env.update(ITERATIONS=str(steps), WARMUP_STEPS=str(self.warmup_steps), VAL_LOSS_EVERY="0",
                   TRAIN_LOG_EVERY=str(max(1, steps)), MAX_WALLCLOCK_SECONDS="0", WARMDOWN_ITERS="0",
                   VOCAB_SIZE=str(self.vocab_size))
        return env


NAIVE_BASELINE_8XH100 = SpeedReference(
    ms_per_step=43.54,
    hardware="8xH100 80GB HBM3 (SXM)",
    source=("openai/parameter-golf@4908dc46f records/track_10min_16mb/2026-03-17_NaiveBaseline/train.log: "
            "'step:13780/20000 ... train_time:600038ms step_avg:43.54ms'"),
    caveat=("the baseline script's time for the same model and batch; the reference trainer's own 8xH100 time "
            "is not recorded yet, so the factor is an estimate"),
)

PROFILES: dict[str, CalibrationProfile] = {
    "baseline-9x512": CalibrationProfile(
        name="baseline-9x512",
        description="reference trainer in the baseline configuration (9x512, vocab 1024, 524,288 tokens/step)",
        vocab_size=1024,
        dataset={"vocab_size": 1024},
        trainer_env={"NUM_LAYERS": "9", "MODEL_DIM": "512", "NUM_HEADS": "8", "NUM_KV_HEADS": "4", "MLP_MULT": "2",
                     "TRAIN_SEQ_LEN": "1024", "TRAIN_BATCH_TOKENS": "524288", "GRAD_ACCUM_STEPS": "0",
                     "COMPILE": "1", "ZSTD_LEVEL": "3", "VAL_BATCH_SIZE": "524288"},
        default_steps=20,
        warmup_steps=5,
        reference=NAIVE_BASELINE_8XH100,
    ),
    "tiny-cpu": CalibrationProfile(
        name="tiny-cpu",
        description="reference trainer, 2 layers x 64 (CPU machines and tests; no 8xH100 reference)",
        vocab_size=384,
        dataset={"vocab_size": 384, "val_documents": 16, "train_documents": 160, "tokenizer_documents": 120,
                 "train_shard_tokens": 30000},
        trainer_env={"NUM_LAYERS": "2", "MODEL_DIM": "64", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "MLP_MULT": "2",
                     "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "1024", "GRAD_ACCUM_STEPS": "1", "COMPILE": "0",
                     "ZSTD_LEVEL": "3", "KEEP_FLOAT_MAX_NUMEL": "256", "VAL_BATCH_SIZE": "2048", "OMP_NUM_THREADS": "1"},
        default_steps=8,
        warmup_steps=1,
        reference=None,
    ),
}


def profile_for(device: str) -> CalibrationProfile:
    return PROFILES["baseline-9x512" if device == "cuda" else "tiny-cpu"]
