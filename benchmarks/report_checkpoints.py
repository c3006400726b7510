"""Write benchmarks/checkpoints.md: each shipped checkpoint's recipe, training time and test metrics,
read from course_lib/pretrained/manifest.json (the numbers scripts/train_checkpoints.py measured).

Usage: python benchmarks/report_checkpoints.py
"""

from pathlib import Path

from course_lib.checkpoints import PRETRAINED_DIR, read_manifest


def main() -> None:
    rows = ["| checkpoint | size (KB) | epochs (passes) | trained on | train time (s) | test metrics |",
            "| --- | ---: | ---: | --- | ---: | --- |"]
    for name, entry in sorted(read_manifest().items()):
        size = (PRETRAINED_DIR / entry["file"]).stat().st_size / 1024
        metrics = ", ".join(f"{k} = {v:.4g}" for k, v in entry.get("metrics", {}).items())
        recipe = entry.get("recipe", {})
        epochs = recipe.get("epochs", recipe.get("passes", ""))  # the VQ-VAEs count passes over the data
        rows.append(f"| {name} | {size:.0f} | {epochs} | {entry.get('trained_on', '')} "
                    f"| {entry.get('train_seconds', '')} | {metrics} |")
    text = "# Shipped checkpoints\n\nWritten by `python benchmarks/report_checkpoints.py` from the manifest.\n\n"
    out = Path(__file__).parent / "checkpoints.md"
    out.write_text(text + "\n".join(rows) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
