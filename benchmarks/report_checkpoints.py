"""Write benchmarks/checkpoints.md: each shipped checkpoint's recipe, training time and test metrics,
read from course_lib/pretrained/manifest.json (the numbers scripts/train_checkpoints.py measured),
and the model goals of issue 16 against those numbers.

Usage: python benchmarks/report_checkpoints.py
"""

from pathlib import Path

from course_lib.checkpoints import PRETRAINED_DIR, read_manifest

VAE_GOAL_NATS = 225.0  # test IWAE NLL (k = 1000, >= 1,000 fixed-binarized test images) of vae_conv_latent16
VQ_GOAL_NMSE = 0.045  # test MSE / training-pixel variance of vqvae_k64_restart, with every code used


def recipe_text(recipe: dict) -> str:
    """The knobs that distinguish the recipes: schedule and learning rate (the rest is in the manifest)."""
    schedule = recipe.get("lr_schedule") or recipe.get("schedule") or "constant"  # the classifier says "schedule"
    text = f"{schedule}, lr {recipe.get('lr', '')}"
    if recipe.get("finetune_passes"):  # a second stage (vqvae_recipe's finetune_passes)
        text += f"; then {recipe['finetune_schedule']}, lr {recipe['finetune_lr']}"
    return text


def goal_rows(manifest: dict) -> list[str]:
    rows = ["| model | measure | value | goal | met |", "| --- | --- | ---: | ---: | --- |"]
    vae = manifest.get("vae_conv_latent16", {}).get("metrics", {})
    base = manifest.get("vae_mlp_baseline", {}).get("metrics", {})
    if "iwae_nll" in vae:
        what = f"test IWAE NLL, k = {vae['iwae_k']}, {vae['iwae_images']} images (nats)"
        ok = vae["iwae_nll"] <= VAE_GOAL_NATS and vae["iwae_images"] >= 1000
        rows.append(f"| vae_conv_latent16 | {what} | {vae['iwae_nll']:.1f} | <= {VAE_GOAL_NATS:.0f} "
                    f"| {'yes' if ok else 'no'} |")
    if "iwae_nll" in base:
        what = f"test IWAE NLL, k = {base['iwae_k']}, {base['iwae_images']} images (nats)"
        beaten = "iwae_nll" in vae and vae["iwae_nll"] < base["iwae_nll"]
        rows.append(f"| vae_mlp_baseline (pytorch/examples VAE) | {what} | {base['iwae_nll']:.1f} "
                    f"| above vae_conv_latent16 | {'yes' if beaten else 'no'} |")
    vq = manifest.get("vqvae_k64_restart", {}).get("metrics", {})
    if "test_nmse" in vq:
        ok = vq["test_nmse"] <= VQ_GOAL_NMSE and vq["test_dead_codes"] == 0
        rows.append(f"| vqvae_k64_restart | test NMSE (MSE / {vq['pixel_variance']:.4f}); dead codes; perplexity "
                    f"| {vq['test_nmse']:.5f}; {vq['test_dead_codes']}; {vq['test_codebook_perplexity']:.1f} "
                    f"| <= {VQ_GOAL_NMSE}; 0; - | {'yes' if ok else 'no'} |")
    return rows


def main() -> None:
    manifest = read_manifest()
    rows = ["| checkpoint | size (KB) | epochs (passes) | schedule | trained on | train time (s) | test metrics |",
            "| --- | ---: | ---: | --- | --- | ---: | --- |"]
    notes = []
    for name, entry in sorted(manifest.items()):
        size = (PRETRAINED_DIR / entry["file"]).stat().st_size / 1024
        metrics = ", ".join(f"{k} = {v}" if isinstance(v, int) else f"{k} = {v:.4g}"
                            for k, v in entry.get("metrics", {}).items() if isinstance(v, (int, float)))
        recipe = entry.get("recipe", {})
        epochs = recipe.get("epochs", recipe.get("passes", ""))  # the VQ-VAEs count passes over the data
        if recipe.get("finetune_passes"):
            epochs = f"{epochs} + {recipe['finetune_passes']}"
        seconds = entry.get("train_seconds", "")
        if "train_seconds_note" in entry:
            notes.append(f"- {name}: {entry['train_seconds_note']}.")
            seconds = f"{seconds} *"
        rows.append(f"| {name} | {size:.0f} | {epochs} | {recipe_text(recipe)} | {entry.get('trained_on', '')} "
                    f"| {seconds} | {metrics} |")
    text = ["# Shipped checkpoints", "",
            "Written by `python benchmarks/report_checkpoints.py` from the manifest; each checkpoint is "
            "trained by `python scripts/train_checkpoints.py NAME`.", "",
            "## Model goals (issue 16)", "", *goal_rows(manifest), "",
            "## All checkpoints", "", *rows, ""]
    if notes:
        text += ["Training times marked * are wall-clock times on a shared machine:", "", *notes, ""]
    text += ["Training times without a note were recorded before the script noted the machine's load.", ""]
    out = Path(__file__).parent / "checkpoints.md"
    out.write_text("\n".join(text))
    print(out.read_text())


if __name__ == "__main__":
    main()
