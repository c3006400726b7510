"""Train the course's pretrained checkpoints and record them in the manifest.

Usage:
    python scripts/train_checkpoints.py autoencoder_latent2 autoencoder_latent16 [--device cpu] [--threads 1]
    python scripts/train_checkpoints.py --list

Each recipe is fixed here (seed, epochs, learning rate, schedule, width), so a checkpoint is
reproducible on the same device, thread count and library versions. The manifest gets the file's
SHA-256, the recipe, the training history, the test metrics measured right after training and the
wall-clock training time, with a note when the machine was busy (its load average exceeded the
threads this training used), since the time then says little about the recipe's cost.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import time
from pathlib import Path

import torch

from course_lib import autoencoder, checkpoints, classifier, likelihoods, pixelcnn, vae, vq
from course_lib.data import load_fashion_mnist
from course_lib.metrics import psnr
from course_lib.runtime import get_device, seed_everything
from course_lib.training import evaluate, train, train_in_chunks

VALIDATION_SIZE = 5000  # the last 5,000 training images are held out for validation


LOAD_SAMPLES: list[float] = []  # the 1-minute load average after each epoch of the running training


def log_epoch(unit: str, then=None):
    """An ``on_epoch_end`` callback: print the epoch's losses (to follow a long run in its log), sample
    the machine's load average, then call ``then`` (e.g. ``vq.codebook_tracker``)."""
    def callback(epoch: int, history: dict) -> None:
        if then is not None:
            then(epoch, history)
        if hasattr(os, "getloadavg"):
            LOAD_SAMPLES.append(os.getloadavg()[0])
        shown = {k: v[-1] for k, v in history.items() if isinstance(v[-1], (int, float))}
        print(f"{unit} {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()), flush=True)
    return callback


def fashion_splits():
    x_train, _ = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("test")
    return x_train[:-VALIDATION_SIZE], x_train[-VALIDATION_SIZE:], x_test


def autoencoder_recipe(latent_dim: int, epochs: int = 15):
    def run(device):
        x_train, x_val, x_test = fashion_splits()
        seed_everything(0)
        model = autoencoder.ConvAutoencoder(latent_dim=latent_dim)
        recipe = {"epochs": epochs, "lr": 1e-3, "batch_size": 128, "seed": 0}
        history = train(model, autoencoder.autoencoder_loss, x_train, val_data=x_val, device=device, **recipe)
        x_hat = autoencoder.reconstruct_dataset(model, x_test)
        metrics = {
            "test_loss": evaluate(model, autoencoder.autoencoder_loss, x_test)["loss"],
            "test_mse_per_pixel": float((x_hat - x_test).pow(2).mean()),
            "test_psnr_db": float(psnr(x_hat.clamp(0, 1), x_test)),
        }
        return model, {"latent_dim": latent_dim}, recipe, history, metrics
    return run


VQVAE_KWARGS = {"num_codes": 64, "code_dim": 16, "channels": 16}  # K = 64 codes of D = 16 on a 7x7 grid


def pixel_variance() -> float:
    """The variance of all training pixels (0.1246), the scale of the VQ-VAEs' NMSE (MSE / variance)."""
    x_all, _ = load_fashion_mnist("train")
    return float(x_all.var())


def vqvae_recipe(mode: str = "plain", restart_after: int = 0, passes: int = 12, chunk_size: int = 11000,
                 channels: int = VQVAE_KWARGS["channels"], lr: float = 1e-3, lr_schedule: str | None = None,
                 finetune_passes: int = 0, finetune_lr: float = 2e-4):
    """A VQ-VAE trained for ``passes`` passes over the training set, logged every ``chunk_size`` images.

    With ``lr_schedule="cosine"`` the run is one ``training.train`` of ``passes`` epochs whose learning
    rate decays along a cosine to 0 (the codebook is then logged once per pass: ``chunk_size`` is the
    training set); without, ``train_in_chunks`` at a constant learning rate. ``finetune_passes > 0`` adds
    a second stage: that many more passes on a second cosine from ``finetune_lr`` (a restart at a tenth
    of the first peak, which lowers the test error further once the first cosine has reached 0).

    ``resume=True`` (``--resume``) takes the shipped checkpoint as the first stage's result instead of
    retraining it and runs only the second stage; the manifest then records the first stage's SHA-256.
    """
    def run(device, out=checkpoints.PRETRAINED_DIR, resume=False):
        x_train, x_val, x_test = fashion_splits()
        seed_everything(0)
        init_kwargs = {**VQVAE_KWARGS, "channels": channels, "mode": mode, "restart_after": restart_after}
        model = vq.VQVAE(**init_kwargs)
        tracker = vq.codebook_tracker(model, x_val[:2000])
        first_stage = {}
        if resume:
            if not finetune_passes:
                raise SystemExit("--resume: this recipe has no second stage to run")
            name = next(n for n, r in RECIPES.items() if r is run)
            entry = checkpoints.read_manifest(Path(out) / "manifest.json")[name]
            if entry["recipe"].get("finetune_passes"):
                raise SystemExit(f"--resume: the shipped {name} already has its second stage")
            shipped, ckpt = checkpoints.load_pretrained(name, "cpu", manifest=Path(out) / "manifest.json")
            model.load_state_dict(shipped.state_dict())
            history = ckpt["history"]
            recipe = entry["recipe"]
            first_stage = {"first_stage_sha256": entry["sha256"], "first_stage_train_seconds": entry["train_seconds"],
                           "first_stage_note": entry.get("train_seconds_note", "")}
        elif lr_schedule is None:
            recipe = {"passes": passes, "chunk_size": chunk_size, "lr": lr, "batch_size": 128, "seed": 0,
                      "val_subset": 2000}
            history = train_in_chunks(
                model, vq.vqvae_loss, x_train, chunk_size=chunk_size, passes=passes, lr=lr, batch_size=128, seed=0,
                val_data=x_val[:2000], device=device, progress=False, on_epoch_end=log_epoch("chunk", tracker),
            )
        else:
            recipe = {"passes": passes, "chunk_size": len(x_train), "lr": lr, "lr_schedule": lr_schedule,
                      "batch_size": 128, "seed": 0, "val_subset": 2000}
            history = train(model, vq.vqvae_loss, x_train, epochs=passes, lr=lr, lr_schedule=lr_schedule,
                            batch_size=128, seed=0, val_data=x_val[:2000], device=device, progress=False,
                            on_epoch_end=log_epoch("pass", tracker))
        if finetune_passes:
            history = train(model, vq.vqvae_loss, x_train, epochs=finetune_passes, lr=finetune_lr,
                            lr_schedule="cosine", batch_size=128, seed=1, val_data=x_val[:2000], device=device,
                            progress=False, history={k: list(v) for k, v in history.items()},
                            on_epoch_end=log_epoch("fine-tuning pass", tracker))
            recipe = {**recipe, "finetune_passes": finetune_passes, "finetune_lr": finetune_lr,
                      "finetune_schedule": "cosine", "finetune_seed": 1, **first_stage}
        model.eval()
        x_hat = autoencoder.reconstruct_dataset(model, x_test)
        indices = vq.encode_indices_dataset(model, x_test)
        mse = float((x_hat - x_test).pow(2).mean())
        variance = pixel_variance()
        metrics = {
            "test_loss": evaluate(model, vq.vqvae_loss, x_test)["loss"],
            "test_mse_per_pixel": mse,
            "test_nmse": mse / variance,  # the Keras VQ-VAE example's measure: MSE / variance of training pixels
            "pixel_variance": variance,
            "test_psnr_db": float(psnr(x_hat.clamp(0, 1), x_test)),
            "test_codebook_perplexity": float(vq.perplexity(indices, model.num_codes)),
            "num_codes": model.num_codes,
            "test_dead_codes": vq.dead_codes(indices, model.num_codes),
        }
        return model, init_kwargs, recipe, history, metrics
    return run


def vq_prior_recipe(vqvae_name: str, epochs: int = 6):
    """The autoregressive prior over the 7x7 codes of the (already trained) VQ-VAE ``vqvae_name``."""
    def run(device, out=checkpoints.PRETRAINED_DIR):
        x_train, x_val, x_test = fashion_splits()
        vqvae, _ = checkpoints.load_pretrained(vqvae_name, device, manifest=Path(out) / "manifest.json")
        codes = {name: vq.encode_indices_dataset(vqvae, x) for name, x in
                 (("train", x_train), ("val", x_val), ("test", x_test))}
        seed_everything(0)
        init_kwargs = {"num_codes": vqvae.num_codes, "grid": list(vqvae.grid)}
        prior = pixelcnn.CodePrior(**init_kwargs)
        recipe = {"vqvae": vqvae_name, "epochs": epochs, "lr": 1e-3, "batch_size": 128, "seed": 0}
        history = train(prior, pixelcnn.prior_loss, codes["train"], val_data=codes["val"], device=device,
                        progress=False, on_epoch_end=log_epoch("epoch"),
                        **{k: v for k, v in recipe.items() if k != "vqvae"})
        test = evaluate(prior, pixelcnn.prior_loss, codes["test"])
        grid_size = math.prod(vqvae.grid)
        metrics = {
            "test_nll_nats_per_image": test["loss"],
            "test_bits_per_code": test["bits_per_code"],
            "uniform_nll_nats_per_image": grid_size * math.log(vqvae.num_codes),
            "uniform_bits_per_code": math.log2(vqvae.num_codes),
        }
        return prior, init_kwargs, recipe, history, metrics
    return run


SUBSET_CHECK = {"images": 100, "k": 100, "seed": 0}  # the re-evaluation tests/test_vae.py repeats


def vae_subset_check(model, x_test_model: torch.Tensor) -> dict:
    """``evaluate_vae`` on the first 100 test images with k = 100 (seconds): the manifest records it so
    that a test can reload the shipped file, repeat the evaluation and compare."""
    n, k, seed = SUBSET_CHECK["images"], SUBSET_CHECK["k"], SUBSET_CHECK["seed"]
    m = vae.evaluate_vae(model, x_test_model[:n], k=k, seed=seed)
    return {**SUBSET_CHECK, "neg_elbo": m["neg_elbo"], "iwae_nll": m["iwae_nll"]}


VAE_CHANNELS = 16  # conv width of the small VAEs: a quarter of the autoencoder's compute, trainable in minutes
VAE_TEST_BINARIZATION_SEED = 0  # the one fixed binarization of the test set (the validation set uses seed 1)


def vae_recipe(latent_dim: int, likelihood: str = "bernoulli", epochs: int = 5, iwae_k: int = 1000,
               iwae_images: int = 500, channels: int = VAE_CHANNELS, lr_schedule: str | None = None,
               architecture: str = "conv", hidden: int = 400):
    """A VAE trained on the negative ELBO (vae-loss), and its test metrics (evaluate_vae).

    ``architecture="conv"``: a ``ConvVAE`` of width ``channels``; ``"mlp"``: an ``MLPVAE`` with
    ``hidden`` units (the pytorch/examples VAE: 784-400-20, Adam 1e-3, batch 128). ``lr_schedule``:
    ``None`` (Adam at 1e-3 throughout) or ``"cosine"`` (decaying to 0 over the run, ``training.train``).

    Bernoulli: dynamic binarization of every training batch, metrics on one fixed binarization of the
    test set. Gaussian (learned variance): the grey levels themselves. The IWAE estimate of -log p(x)
    costs k decoder passes per image, so it uses the first ``iwae_images`` test images; the other
    metrics use all 10,000.
    """
    def run(device):
        x_train, x_val, x_test = fashion_splits()
        binary = likelihood == "bernoulli"
        if binary:
            x_val = likelihoods.binarize(x_val, torch.Generator().manual_seed(1))
            x_test_model = likelihoods.binarize(x_test, torch.Generator().manual_seed(VAE_TEST_BINARIZATION_SEED))
        else:
            x_test_model = x_test
        seed_everything(0)
        if architecture == "mlp":
            init_kwargs = {"latent_dim": latent_dim, "hidden": hidden, "likelihood": likelihood}
            model = vae.MLPVAE(**init_kwargs)
        else:
            init_kwargs = {"latent_dim": latent_dim, "channels": channels, "likelihood": likelihood}
            model = vae.ConvVAE(**init_kwargs)
        recipe = {"epochs": epochs, "lr": 1e-3, "batch_size": 128, "seed": 0, "dynamic_binarization": binary,
                  "test_binarization_seed": VAE_TEST_BINARIZATION_SEED if binary else None}
        if lr_schedule is not None:
            recipe["lr_schedule"] = lr_schedule
        optimizer = None
        if likelihood == "gaussian":  # the learned log sigma^2 gets a 10x learning rate, or Adam's ~lr-sized
            recipe["decoder_logvar_lr"] = 1e-2  # steps leave it far from its optimum after a few epochs
            others = [p for n, p in model.named_parameters() if n != "decoder_logvar"]
            optimizer = torch.optim.Adam([{"params": others, "lr": 1e-3},
                                          {"params": [model.decoder_logvar], "lr": 1e-2}])
        history = train(model, vae.ELBOObjective(binarize=binary), x_train, val_data=x_val, device=device,
                        progress=False, epochs=epochs, lr=1e-3, batch_size=128, seed=0, optimizer=optimizer,
                        lr_schedule=lr_schedule, on_epoch_end=log_epoch("epoch"))
        start = time.perf_counter()
        metrics = vae.evaluate_vae(model, x_test_model, x_grey=x_test, k=iwae_k, n_iwae=iwae_images)
        metrics["eval_seconds"] = round(time.perf_counter() - start, 1)
        metrics["test_images"] = len(x_test_model)
        metrics["subset_check"] = vae_subset_check(model, x_test_model)
        if not binary:
            metrics["decoder_sigma"] = float(model.decoder_logvar.detach().exp().sqrt())
        return model, init_kwargs, recipe, history, metrics
    return run


def classifier_recipe(epochs: int = 4, feature_dim: int = 128):
    """The Fashion-MNIST classifier whose features and softmax give the domain FID and IS (course_lib.fid)."""
    def run(device):
        x_all, y_all = load_fashion_mnist("train")
        x_test, y_test = load_fashion_mnist("test")
        x_train, y_train = x_all[:-VALIDATION_SIZE], y_all[:-VALIDATION_SIZE]
        x_val, y_val = x_all[-VALIDATION_SIZE:], y_all[-VALIDATION_SIZE:]
        seed_everything(0)
        init_kwargs = {"feature_dim": feature_dim, "num_classes": 10}
        model = classifier.FashionClassifier(**init_kwargs)
        recipe = {"epochs": epochs, "lr": 2e-3, "batch_size": 128, "seed": 0, "schedule": "cosine"}
        history = classifier.train_classifier(model, x_train, y_train, x_val=x_val, y_val=y_val, device=device,
                                              **{k: v for k, v in recipe.items() if k != "schedule"})
        model.cpu()
        metrics = {"test_accuracy": classifier.accuracy(model, x_test, y_test),
                   "val_accuracy": classifier.accuracy(model, x_val, y_val)}
        return model, init_kwargs, recipe, history, metrics
    return run


RECIPES = {
    "autoencoder_latent2": autoencoder_recipe(2),
    "autoencoder_latent16": autoencoder_recipe(16),
    "vqvae_k64": vqvae_recipe("plain"),
    "vqvae_k64_ema": vqvae_recipe("ema"),
    # The VQ-VAE of the prior and of notebooks 04 (sampling) and 06: four times as wide, 14 passes with a cosine
    # schedule, for a test NMSE <= 0.045 with every code used (issue 16).
    # A second cosine of 2 passes from 2e-4 then takes the NMSE from 0.04504 to below 0.045.
    "vqvae_k64_restart": vqvae_recipe("plain", restart_after=20, channels=64, passes=14, lr=2e-3, lr_schedule="cosine",
                                      finetune_passes=2),
    "vq_prior_k64": vq_prior_recipe("vqvae_k64_restart"),  # the healthiest codebook of the three
    "vae_conv_latent2": vae_recipe(2),
    # The course's VAE: twice as wide as vae_conv_latent2 (channels 32), 28 epochs with a cosine schedule,
    # for a test IWAE NLL <= 225 nats (k = 1000, 1,000 images; issue 16).
    "vae_conv_latent16": vae_recipe(16, channels=32, epochs=28, lr_schedule="cosine", iwae_images=1000),
    # The baseline it must beat, the pytorch/examples VAE (784-400-20, Adam 1e-3, 20 epochs, batch 128),
    # on the same data, binarization and evaluation.
    "vae_mlp_baseline": vae_recipe(20, architecture="mlp", hidden=400, epochs=20, iwae_images=1000),
    "vae_conv_gauss_latent16": vae_recipe(16, likelihood="gaussian", epochs=3, iwae_k=100),
    "fashion_classifier": classifier_recipe(),
}


def two_stage_note(recipe: dict, seconds: float, note: str) -> str:
    """The timing note of a run resumed from a shipped first stage: each stage's time and conditions."""
    return (f"the sum of two runs: the first stage took {recipe['first_stage_train_seconds']} s "
            f"({recipe.get('first_stage_note') or 'no note'}), the second {seconds:.1f} s ({note or 'no note'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="recipes to train")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest)")
    parser.add_argument("--out", default=str(checkpoints.PRETRAINED_DIR), help="directory for .pt files and manifest")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--list", action="store_true", help="list the recipes")
    parser.add_argument("--resume", action="store_true",
                        help="recipes with a second stage: start it from the shipped first-stage checkpoint")
    args = parser.parse_args()
    if args.list or not args.names:
        print("\n".join(RECIPES))
        return
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = get_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        LOAD_SAMPLES.clear()
        start = time.perf_counter()
        # A recipe that builds on another checkpoint (the prior on its VQ-VAE) must read it from --out.
        parameters = inspect.signature(RECIPES[name]).parameters
        if args.resume and "resume" not in parameters:
            parser.error(f"--resume: {name} has no second stage")
        kwargs = {"out": out} if "out" in parameters else {}
        if args.resume:
            kwargs["resume"] = True
        model, init_kwargs, recipe, history, metrics = RECIPES[name](device, **kwargs)
        seconds = time.perf_counter() - start
        path = out / f"{name}.pt"
        model.cpu()
        sha = checkpoints.save_checkpoint(path, model, init_kwargs=init_kwargs, history=history, metrics=metrics)
        timing = {}
        if LOAD_SAMPLES:  # more runnable processes than our threads: others shared the cores
            busy = max(LOAD_SAMPLES) > threads + 1
            timing["train_seconds_note"] = (
                f"measured on a busy machine: other jobs shared its {os.cpu_count()} cores (1-minute load average "
                f"up to {max(LOAD_SAMPLES):.1f} while this training used {threads} thread(s))" if busy else
                f"measured on a quiet machine (load average at most {max(LOAD_SAMPLES):.1f})")
        if "first_stage_train_seconds" in recipe:  # --resume: the total is both stages' times
            timing["train_seconds_note"] = two_stage_note(recipe, seconds, timing.get("train_seconds_note", ""))
        checkpoints.register_checkpoint(
            name, path, sha, manifest=out / "manifest.json", init_kwargs=init_kwargs, recipe=recipe,
            metrics=metrics, trained_on=f"{device.type}, {threads} thread(s), torch {torch.__version__}",
            train_seconds=round(seconds + recipe.get("first_stage_train_seconds", 0), 1),
            script=f"python scripts/train_checkpoints.py {name}", **timing,
        )
        print(f"{name}: {metrics} in {seconds:.0f} s -> {path} ({sha[:12]})")


if __name__ == "__main__":
    main()
