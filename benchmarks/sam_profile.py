"""Where one SAM click's time goes: torch.profiler tables of the reference decoder forward
(ultralytics' modules) and the fast one (prepared frame state + `fast_decoder`), and the
upsampling of the logits to original pixels. Untrained weights (timings do not depend on
them), a random 1280x720 frame.

    .venv/bin/python benchmarks/sam_profile.py [sam2_t|mobile_sam] [threads] [imgsz]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.training.sam.engine import SamEngine  # noqa: E402
from src.training.sam.prompts import PointPrompt, Prompt  # noqa: E402
from src.training.sam.weights import find_weights  # noqa: E402


def per_call_ms(fn, repeats: int = 10) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "sam2_t"
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    engine = SamEngine.load(find_weights(name, ROOT / "models" / "base", untrained=True), size)
    image = (np.random.default_rng(0).random((720, 1280, 3)) * 255).astype(np.uint8)
    start = time.perf_counter()
    emb = engine.embed(image)
    print(f"{name}, {torch.get_num_threads()} thread(s): embed {time.perf_counter() - start:.2f} s")
    prompt = Prompt([PointPrompt(300, 360), PointPrompt(500, 200, False)])
    points, labels = engine.prompt_tensors(prompt, emb.letterbox)
    image_embed, high_res = engine.image_inputs(emb)
    with torch.inference_mode():
        ref = lambda: engine.decode_logits(image_embed, high_res, points, labels, True)  # noqa
        fast = lambda: engine.decode_fast(emb, points, labels, True)                      # noqa
        logits = fast()[0][0]
        print(f"decoder: reference {per_call_ms(ref):.1f} ms, fast {per_call_ms(fast):.1f} ms; "
              f"prepare_frame {per_call_ms(lambda: engine.decoder_state(emb)):.1f} ms (cached)")
        print(f"to original pixels, 3 candidates: full {per_call_ms(lambda: engine.to_original(logits, emb.letterbox)):.1f} ms, "  # noqa: E501
              f"cropped {per_call_ms(lambda: [engine.to_original_cropped(m, emb.letterbox) for m in logits]):.1f} ms")  # noqa: E501
        for label, fn in (("reference", ref), ("fast", fast)):
            with profile() as prof:
                fn()
            print(f"--- {label} decoder")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    sys.exit(main())
