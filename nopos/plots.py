"""Plots the chapters share: training curves, schedules, per-position accuracy."""
import matplotlib.pyplot as plt


def loss_and_lr(history, title="", multiplier=None):
    """Loss (log scale) and learning rate over the steps, one above the other."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    top.plot(history["step"], history["loss"], lw=0.6, alpha=0.5, label="loss")
    top.plot(history["step"], history["running"], lw=1.5, label="running loss")
    top.set_yscale("log")
    top.set_ylabel("loss (nats)")
    top.legend(loc="upper right")
    top.set_title(title)
    bottom.plot(history["step"], history["lr"], color="tab:red")
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    fig.tight_layout()
    plt.show()


def compare_runs(histories, key="running", title="", log=True):
    """One curve per run: {label: history}."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for label, history in histories.items():
        ax.plot(history["step"], history[key], label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel({"running": "running loss", "loss": "loss"}.get(key, key))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.show()


def schedule(multipliers, steps, title="learning-rate multiplier"):
    """Curves of multiplier(step) for {label: function of step}."""
    fig, ax = plt.subplots(figsize=(8, 3))
    for label, fn in multipliers.items():
        ax.plot(list(steps), [fn(s) for s in steps], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("multiplier")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.show()


def per_position(curves, title="accuracy by position", reference=None):
    """Accuracy at positions 1..n-1 for {label: sequence}, with an optional reference curve."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for label, values in curves.items():
        values = [float(v) for v in values]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
    if reference is not None:
        label, values = reference
        ax.plot(range(1, len(values) + 1), values, "k--", lw=1, label=label)
    ax.set_xlabel("position")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.show()
