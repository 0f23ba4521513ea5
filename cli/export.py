"""`ecgcl export CHECKPOINT OUT_DIR`: a checkpoint as a shareable folder in the Hugging Face Hub layout."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path())
@click.argument("out_dir", type=click.Path())
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
@click.option("--push-to-hub", "repo", metavar="ORG/NAME",
              help="Also upload the folder to this Hugging Face Hub repository (needs `pip install 'ecgcl[hub]'` "
                   "and a token: `hf auth login` or HF_TOKEN).")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repository as private.")
def export(checkpoint: str, out_dir: str, overwrite: bool, repo: str | None, private: bool) -> None:
    """Write CHECKPOINT (pretrain.pt, pretrain.last.pt or a fine-tuned *.best.pt) to OUT_DIR as model.safetensors
    (weights only, no pickle), config.json and a README.md model card; `ecgcl.load_encoder`, `finetune
    --checkpoint`, `evaluate` and `embed` accept the folder."""
    from ecgcl.engine.export import export_model, push_to_hub

    folder = export_model(checkpoint, out_dir, overwrite=overwrite)
    click.echo(f"exported {checkpoint} to {folder}/ (model.safetensors, config.json, README.md)")
    if repo:
        click.echo(f"uploaded to {push_to_hub(folder, repo, private=private)}")
