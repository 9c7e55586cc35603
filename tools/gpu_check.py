"""GPU checks, run on a machine with CUDA (the course itself never needs one).

    python tools/gpu_check.py

Trains with the course's recipe on `cuda`, checks that every tensor follows the
model's device (data, checks, TransformerLens bridge, analyses), and runs the
side-by-side benchmark on the GPU. Prints figures; exits non-zero on a failure.
"""
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    from nopos.checkpoint import load_reference
    from nopos.checks import ch01, ch03
    from nopos.config import model_config
    from nopos.env import pick_device
    from nopos.model import W_pos, build_model, lens
    from nopos_reference import data
    from nopos_reference.train import RECIPE, eval_batch, evaluate, train
    from nopos_reference.training import per_position_accuracy, train_step

    device = pick_device()
    print(f"device {device}: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    assert device.type == "cuda"

    # data functions follow the requested device
    tokens = data.make_batch(4, 50, 300, torch.Generator().manual_seed(0), device=device)
    assert tokens.device.type == "cuda"
    ch01.check_make_batch(data.make_batch, quiet=True)

    # the course's recipe on the GPU
    torch.manual_seed(0)
    model = build_model(model_config(), seed=0, device=device)
    start = time.perf_counter()
    history = train(model, RECIPE, seed=0, progress=False, step_fn=train_step)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    loss, accuracy = evaluate(model, eval_batch(model_config(), device))
    print(f"course recipe on cuda: {len(history['step'])} steps in {seconds:.1f} s; "
          f"eval loss {loss:.4f}, accuracy {accuracy:.2%}")
    assert accuracy > 0.995 and bool((W_pos(model) == 0).all())
    assert per_position_accuracy(model, eval_batch(model_config(), device, size=100)).device.type == "cuda"

    # checkpoint and TransformerLens bridge on the GPU
    reference, _ = load_reference(device)
    bridge = lens(reference)
    _, cache = bridge.run_with_cache(tokens)
    assert cache["blocks.0.attn.hook_pattern"].device.type == "cuda"
    print(f"reference on cuda: eval {evaluate(reference, eval_batch(model_config(), device))}")

    # the chapter 4-5 analyses, where present
    try:
        from nopos_reference import attention, mechanism  # noqa: F401
        print("analysis modules import on cuda machine")
    except ImportError:
        pass

    ch03.check_train_step(train_step, quiet=True)
    print("checks pass on the GPU machine")
    bench = subprocess.run([sys.executable, "-m", "tests.bench.recipe", "--device", "cuda"],
                           cwd=ROOT, capture_output=True, text=True)
    print(bench.stdout, bench.stderr[-2000:])
    return bench.returncode


if __name__ == "__main__":
    raise SystemExit(main())
