"""Reports: Markdown tables and PNG plots of experiments, a self-contained HTML page per run."""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from transgan.artifacts.checkpoint import load_checkpoint

# Published CIFAR-10 (IS, FID) of TransGAN v1: Table 1 (G/D combos), 3 (tricks), 4 (sizes).
PAPER: dict[str, dict[str, tuple[float, float]]] = {
    "gd-combos": {"cnnG-cnnD": (8.55, 12.42), "transG-cnnD": (8.59, 13.23),
                  "cnnG-transD": (6.17, 49.83), "transG-transD": (6.95, 41.41)},
    "tricks": {"baseline": (6.95, 41.41), "diffaug": (8.15, 19.85), "mtct": (8.20, 19.12),
               "locality": (8.22, 18.58)},
    "sizes": {"S": (8.22, 18.58), "M": (8.36, 16.27), "L": (8.50, 14.46), "XL": (8.63, 11.89)},
}
PAPER_DATA = ("cifar10", "stl10")
# An experiment folder's description, written by transgan.experiments and read here.
MANIFEST = "experiment.json"
SKIP_KEYS = ("images", "time", "protocol")
# Most evaluation points an experiment report's course-of-training table lists.
COURSE_ROWS = 10
# Training statistics (stats.jsonl) an experiment report follows through training beside the
# metrics: D's R1, the squared input-gradient norm on reals that zero-centred losses log.
COURSE_STATS = ("r1",)


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; [] when it does not exist."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lower_is_better(metric: str) -> bool:
    """FID- and KID-like metrics improve downwards, IS-like ones upwards."""
    return metric.endswith(("fid", "kid"))


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Metric keys of metrics.jsonl records, without *_std companions."""
    names: list[str] = []
    for record in records:
        for key, value in record.items():
            if (key not in SKIP_KEYS and not key.endswith("_std") and key not in names
                    and isinstance(value, int | float)):
                names.append(key)
    return names


def run_counters(run_dir: Path) -> dict[str, Any]:
    """Images seen and wall time of a run: its checkpoint, else its stats lines."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        counters = load_checkpoint(latest)["counters"]
        return {"images": int(counters["images"]), "wall_time": float(counters["wall_time"])}
    stats = read_jsonl(run_dir / "stats.jsonl")
    if not stats:
        return {"images": 0, "wall_time": math.nan}
    times = [s["time"] for s in stats if "time" in s]
    wall = times[-1] - times[0] if len(times) > 1 else math.nan
    return {"images": int(stats[-1]["images"]), "wall_time": wall}


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _seed_dirs(arm_dir: Path) -> list[Path]:
    return sorted((p for p in arm_dir.glob("seed*") if p.is_dir()),
                  key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0)


def _protocol_text(protocol: dict[str, Any]) -> str:
    parts = [f"N = {protocol.get('num_samples', '?')} samples",
             f"reference {protocol.get('reference', '?')}",
             f"extractor {protocol.get('feature_extractor', '?')}"]
    return ", ".join(parts)


def report_experiment(out_dir: str | Path) -> Path:
    """Write report.md, metric_vs_images.png and samples.png of an experiment folder."""
    out = Path(out_dir)
    manifest = json.loads((out / MANIFEST).read_text())
    name, data = manifest["experiment"], manifest["data"]
    arms = manifest["arms"]
    seed_dirs = {arm["name"]: _seed_dirs(out / arm["name"]) for arm in arms}
    runs = {name: [(d, read_jsonl(d / "metrics.jsonl"), run_counters(d)) for d in dirs]
            for name, dirs in seed_dirs.items()}
    stats = {name: [read_jsonl(d / "stats.jsonl") for d in dirs]
             for name, dirs in seed_dirs.items()}
    all_records = [r for seeds in runs.values() for _, records, _ in seeds for r in records]
    metrics = metric_names(all_records)
    show_paper = data.strip().lower() in PAPER_DATA and name in PAPER

    header = ["arm"] + [f"{m} {'↓' if lower_is_better(m) else '↑'}" for m in metrics]
    header += ["seeds", "images seen", "wall time", "train img/s"]
    if show_paper:
        header += ["paper IS (CIFAR-10)", "paper FID (CIFAR-10)"]
    rows, protocols = [], set()
    for arm in arms:
        seeds = runs[arm["name"]]
        finals = [records[-1] for _, records, _ in seeds if records]
        for record in finals:
            protocols.add(_protocol_text(record.get("protocol", {})))
        cells = [arm["label"]]
        cells += [_mean_std([r.get(m) for r in finals]) for m in metrics]
        images = [c["images"] for _, _, c in seeds]
        walls = [c["wall_time"] for _, _, c in seeds if math.isfinite(c["wall_time"])]
        cells += [str(len(seeds)), f"{min(images):,}" if images else "0",
                  _duration(statistics.mean(walls)) if walls else "n/a",
                  _throughput(stats[arm["name"]])]
        if show_paper:
            paper = PAPER[name].get(arm["name"])
            cells += [f"{paper[0]:.2f} (paper)", f"{paper[1]:.2f} (paper)"] if paper else ["", ""]
        rows.append(cells)

    lines = [f"# Experiment `{name}` on {data}", "", manifest.get("description", ""), "",
             f"Budget {manifest['budget']:,} real images per run, {manifest['seeds']} seed(s); "
             "metrics are the final evaluation of the EMA generator, mean ± std over seeds "
             "(↓ lower is better, ↑ higher is better). Wall time is the mean per run, with "
             "its evaluations; train img/s the mean of the logged training throughput "
             "(runs trained side by side share the machine).", ""]
    if manifest.get("width_scale", 1.0) != 1.0:
        lines += [f"Generator widths scaled by {manifest['width_scale']} (paper models are "
                  "full width).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *_per_seed_table(arms, runs, metrics), ""]
    for metric in metrics:
        arrow = "↓" if lower_is_better(metric) else "↑"
        values = {arm["name"]: _metric_by_images(runs[arm["name"]], metric) for arm in arms}
        lines += [*_course_table(arms, values, f"{metric} {arrow} during training"), ""]
    points = sorted({int(r["images"]) for seeds in runs.values() for _, records, _ in seeds
                     for r in records})
    for key in COURSE_STATS:
        values = {arm["name"]: _stat_by_images(stats[arm["name"]], key, points) for arm in arms}
        if any(values.values()):
            lines += [*_course_table(arms, values, f"D's {key} during training, the mean of "
                                     "its logged values since the evaluation before"), ""]
    if protocols:
        lines += [f"Protocol: {p}." for p in sorted(protocols)] + [""]
    if show_paper:
        lines += ["Paper numbers: TransGAN v1 (Jiang et al. 2021), CIFAR-10, full training "
                  "(500k G steps); not comparable to short budgets.", ""]
    lines += ["![metric vs images](metric_vs_images.png)", "", "![samples](samples.png)", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _plot_experiment_metrics(arms, runs, metrics, out / "metric_vs_images.png")
    _plot_experiment_samples(arms, runs, out / "samples.png")
    return report


def _per_seed_table(arms: list[dict[str, Any]], runs: dict[str, Any],
                    metrics: list[str]) -> list[str]:
    """Markdown lines of every run's final metrics, arm by arm and seed by seed."""
    header = ["arm", "seed"] + metrics + ["images seen", "wall time"]
    lines = ["Per seed:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in arms:
        for run_dir, records, counters in runs[arm["name"]]:
            final = records[-1] if records else {}
            cells = [arm["label"], run_dir.name.removeprefix("seed")]
            cells += [_mean_std([final.get(m)]) for m in metrics]
            cells += [f"{counters['images']:,}", _duration(counters["wall_time"])]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _metric_by_images(seeds: list[tuple[Path, list[dict[str, Any]], Any]],
                      metric: str) -> dict[int, list[float]]:
    """An arm's values of ``metric`` by images seen at evaluation, one per seed evaluated there."""
    values: dict[int, list[float]] = {}
    for _, records, _ in seeds:
        for record in records:
            if isinstance(record.get(metric), int | float):
                values.setdefault(int(record["images"]), []).append(float(record[metric]))
    return values


def _stat_by_images(seeds: list[list[dict[str, Any]]], key: str,
                    points: list[int]) -> dict[int, list[float]]:
    """An arm's logged ``key`` at each evaluation point: per seed, the mean of its values
    logged after the point before and up to this one."""
    values: dict[int, list[float]] = {}
    for records in seeds:
        for low, high in zip([0, *points], points, strict=False):
            window = [float(r[key]) for r in records if isinstance(r.get(key), int | float)
                      and low < r["images"] <= high]
            if window:
                values.setdefault(high, []).append(statistics.mean(window))
    return values


def _throughput(seeds: list[list[dict[str, Any]]]) -> str:
    """The mean logged training img/s over an arm's runs; n/a when none was logged."""
    rates = [float(r["img_per_s"]) for records in seeds for r in records
             if isinstance(r.get("img_per_s"), int | float)]
    return f"{statistics.mean(rates):.1f}" if rates else "n/a"


def _course_table(arms: list[dict[str, Any]], values: dict[str, dict[int, list[float]]],
                  title: str) -> list[str]:
    """Markdown lines of per-arm values (images seen -> one value per seed) at the evaluations,
    mean ± std over the seeds there, so that arms can be compared early as well as at the end;
    at most COURSE_ROWS evaluation points, evenly spread, the last always kept."""
    points = sorted({images for per_images in values.values() for images in per_images})
    if len(points) > COURSE_ROWS:
        step = (len(points) - 1) / (COURSE_ROWS - 1)
        points = [points[round(i * step)] for i in range(COURSE_ROWS)]
    lines = [f"{title} (mean ± std over the seeds, their number in parentheses):",
             "", "| images seen | " + " | ".join(arm["label"] for arm in arms) + " |",
             "|" + "---|" * (len(arms) + 1)]
    for images in points:
        cells = [f"{images:,}"]
        for arm in arms:
            seeds = values[arm["name"]].get(images, [])
            cells.append(f"{_mean_std(seeds)} ({len(seeds)})" if seeds else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plot_experiment_metrics(arms: list[dict[str, Any]], runs: dict[str, Any],
                             metrics: list[str], path: Path) -> None:
    shown = metrics or ["(no evaluations)"]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], shown, strict=True):
        for arm in arms:
            per_images = _metric_by_images(runs[arm["name"]], metric)
            if per_images:
                xs = sorted(per_images)
                ax.plot(xs, [statistics.mean(per_images[x]) for x in xs], marker="o",
                        label=arm["label"])
        ax.set_xlabel("real images seen")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} ({'lower' if lower_is_better(metric) else 'higher'} is better)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_experiment_samples(arms: list[dict[str, Any]], runs: dict[str, Any],
                             path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms), 3.6), squeeze=False)
    for ax, arm in zip(axes[0], arms, strict=True):
        seeds = runs[arm["name"]]
        grid = seeds[0][0] / "samples" / "fakes-latest.png" if seeds else None
        if grid is not None and grid.exists():
            with Image.open(grid) as image:
                ax.imshow(image.convert("RGB"))
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center")
        ax.set_title(arm["label"], fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- one run
def _plot_series(records: list[dict[str, Any]], keys: list[str], path: Path, title: str) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        points = [(r["images"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        if points:
            ax.plot(*zip(*points, strict=True), marker="." if len(points) < 50 else None)
        ax.set_xlabel("real images seen")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def report_run(run_dir: str | Path) -> Path:
    """Write report/ (losses.png, metrics.png, samples.png, report.html) of one run directory."""
    run = Path(run_dir)
    folder = run / "report"
    folder.mkdir(parents=True, exist_ok=True)
    stats = read_jsonl(run / "stats.jsonl")
    records = read_jsonl(run / "metrics.jsonl")
    images: list[tuple[str, Path]] = []
    _plot_series(stats, ["loss_d", "loss_g"], folder / "losses.png", f"losses of {run.name}")
    images.append(("Losses", folder / "losses.png"))
    metrics = metric_names(records)
    if metrics:
        _plot_series(records, metrics, folder / "metrics.png", f"metrics of {run.name}")
        images.append(("Metrics", folder / "metrics.png"))
    latest = run / "samples" / "fakes-latest.png"
    if latest.exists():
        (folder / "samples.png").write_bytes(latest.read_bytes())
        images.append(("Latest samples", folder / "samples.png"))

    counters = run_counters(run)
    summary = [("images seen", f"{counters['images']:,}"),
               ("wall time", _duration(counters["wall_time"]))]
    if stats:
        last = stats[-1]
        summary += [(k, f"{last[k]:.4g}") for k in ("loss_d", "loss_g", "img_per_s")
                    if isinstance(last.get(k), int | float)]
    if records:
        final = records[-1]
        summary += [(f"{m} (at {final['images']:,} images)", f"{final[m]:.4g}")
                    for m in metrics if isinstance(final.get(m), int | float)]
        summary.append(("protocol", _protocol_text(final.get("protocol", {}))))
    options_path = run / "options.yaml"
    options = yaml.safe_load(options_path.read_text()) if options_path.exists() else {}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>TransGAN run {html.escape(run.name)}</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:1100px}"
             "table{border-collapse:collapse;margin-bottom:1.5em}"
             "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>Run {html.escape(str(run))}</h1>", "<h2>Summary</h2>", _table(summary)]
    for title, path in images:
        parts.append(f"<h2>{title}</h2><img alt='{title}' src='{_data_uri(path)}'>")
    if options:
        parts += ["<h2>Options</h2>", _table(sorted((str(k), v) for k, v in options.items()))]
    parts.append("</body></html>")
    page = folder / "report.html"
    page.write_text("\n".join(parts))
    return page
