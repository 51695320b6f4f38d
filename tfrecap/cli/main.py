"""The ``tfrecap`` command: one click group; each feature module owns its commands.

Commands are thin (STYLE.md): parse arguments, build a config, call one library
function. TensorFlow is imported inside the commands, so ``--help`` is instant.
"""

import os

import click

from tfrecap import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfrecap")
def cli():
    """Secure recaptured-image forensics (Zhao et al. 2018).

    \b
    Typical use:
      tfrecap data synth --size 64                 # offline synthetic dataset
      tfrecap train --pipeline demo                # train (resumes if interrupted)
      tfrecap evaluate saved_models/demo --attack fgsm,llcm,pgd --eps 1,2,3,4,5
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _register():
    from tfrecap.cli.data import data
    from tfrecap.cli.evaluate import evaluate, plot
    from tfrecap.cli.predict import predict
    from tfrecap.cli.reproduce import reproduce
    from tfrecap.cli.train import train

    for command in (data, train, evaluate, plot, predict, reproduce):
        cli.add_command(command)


_register()


def main():
    cli(prog_name="tfrecap")


if __name__ == "__main__":
    main()
