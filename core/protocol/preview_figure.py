"""The figure of `ecgcl show --aug`: one strip per lead, the original record in black and what the objective
trains on overlaid in colour (two views, or the perturbed input), hidden patches shaded, and a masked
objective's reconstruction of each hidden patch drawn over the true patch."""

from __future__ import annotations

import numpy as np

from ecgcl.files import finish_figure, make_folders

COLOURS = ("tab:blue", "tab:orange")


def preview_figure(shown, leads: list[str], fs: float, title: str, *, dpi: int = 150) -> int:
    """Write `shown` (an `ecgcl.protocol.preview.Preview`) to `shown.path`; returns how many patches it shaded."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    original = shown.original.numpy()
    count = original.shape[0]
    fig, axes = plt.subplots(count, 1, figsize=(12, 0.9 * count + 1.2), sharex=True, squeeze=False)
    axes = axes[:, 0]
    drawn = shown.drawn
    overlays = [(f"view {i + 1}", v) for i, v in enumerate(drawn["views"])] if "views" in drawn else \
        [("input trained on", drawn["input"])] if "input" in drawn else []
    for lead, ax in enumerate(axes):
        ax.plot(np.arange(original.shape[1]) / fs, original[lead], color="black", lw=0.8, label="original")
        for (label, view), colour in zip(overlays, COLOURS):
            trace = view.numpy()
            if trace.shape[0] == count:  # a view of other leads (a lead group) is not drawn per lead
                ax.plot(np.arange(trace.shape[1]) / fs, trace[lead], color=colour, lw=0.7, alpha=0.8, label=label)
        ax.set_ylabel(leads[lead] if lead < len(leads) else str(lead), rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
    shaded = 0
    if "mask" in drawn:
        mask = drawn["mask"].numpy()
        for token in np.flatnonzero(mask):
            lead, start, stop = shown.patches[token]
            axes[lead].axvspan(start / fs, stop / fs, color="grey", alpha=0.25, lw=0)
            shaded += 1
            if shown.reconstruction is not None:
                patch = shown.reconstruction[token].numpy()
                axes[lead].plot((start + np.arange(len(patch))) / fs, patch, color="tab:red", lw=0.8,
                                label="reconstruction" if shaded == 1 else None)
    axes[-1].set_xlabel("seconds")
    handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    if "mask" in drawn:
        from matplotlib.patches import Patch

        handles["hidden patch"] = Patch(color="grey", alpha=0.25)
    fig.legend(handles.values(), handles.keys(), loc="upper right", fontsize=8, ncol=len(handles))
    fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    make_folders(shown.path.parent, "preview folder")
    finish_figure(shown.path, fig, what="augmentation preview", dpi=dpi)
    return shaded
