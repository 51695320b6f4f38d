"""The ``tfrecap`` command: one click group; each feature module owns its commands.

Commands are thin (STYLE.md): parse arguments, build a config, call one library
function. TensorFlow is imported inside the commands, so ``--help`` is instant, and its
start-up noise is filtered out unless ``--verbose`` is given (``tfrecap.cli.quiet``). A user
error (a bad config, a missing dataset or folder, an unreadable model) ends in one ``Error:``
line and exit status 1, never in a traceback; ``--verbose`` shows the traceback too.
"""

import os
import sys

import click

from tfrecap import __version__
from tfrecap.cli import quiet

# The library's errors that a user causes, as "module:class". Resolved lazily from the modules
# already imported, so this table does not load TensorFlow: an error whose module was never
# imported cannot have been raised.
USER_ERRORS = (
    "tfrecap.config:ConfigError",
    "tfrecap.distribute:StrategyError",
    "tfrecap.data.catalog:DatasetNotFoundError",
    "tfrecap.data.folder:FolderImportError",
    "tfrecap.data.decode:BadImageError",
    "tfrecap.data.pipeline:CorruptShardError",
    "tfrecap.reproduce:ReproduceError",
    "tfrecap.training:TrainingError",
)


def _is_verbose(argv) -> bool:
    return "--verbose" in argv or os.environ.get("TFRECAP_VERBOSE", "") not in ("", "0")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfrecap")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's own logs (CUDA, XLA, ...) and tracebacks. "
                   "Env: TFRECAP_VERBOSE=1.")
def cli(verbose):
    """Secure recaptured-image forensics (Zhao et al. 2018).

    \b
    Typical use:
      tfrecap data synth --size 64                 # offline synthetic dataset
      tfrecap train --pipeline demo                # train (resumes if interrupted)
      tfrecap evaluate saved_models/demo --attack fgsm,llcm,pgd --eps 1,2,3,4,5
      tfrecap predict saved_models/demo photo.jpg  # whole-photo verdict
    """
    quiet.configure(verbose or _is_verbose(sys.argv[1:]))


def _register():
    from tfrecap.cli.audit import audit
    from tfrecap.cli.data import data
    from tfrecap.cli.evaluate import evaluate, plot
    from tfrecap.cli.predict import predict
    from tfrecap.cli.reproduce import reproduce
    from tfrecap.cli.train import train

    for command in (data, train, evaluate, plot, predict, reproduce):
        cli.add_command(command)
    cli.add_command(audit)


_register()


def user_error_types() -> tuple[type, ...]:
    """The classes of :data:`USER_ERRORS` whose modules are imported."""
    found = []
    for entry in USER_ERRORS:
        module, name = entry.split(":")
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet.configure(_is_verbose(argv))  # before any command imports TensorFlow
    try:
        cli.main(args=argv, prog_name="tfrecap", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except Exception as err:
        if not isinstance(err, user_error_types()) or _is_verbose(argv):
            raise
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
