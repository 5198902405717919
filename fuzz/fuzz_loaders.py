"""Coverage-guided fuzz target (atheris) over pivot's file readers.

Each input is one byte choosing the format, then the file's bytes:

* ``0``: a ``.safetensors`` file -> ``pivot.io.load_state_dict``, then ``pivot.ViT.from_timm``
  (config from ``pivot.config`` metadata or inferred from the shapes) when it loads;
* ``1``: an ``.npz`` archive -> ``load_state_dict``, then ``pivot.checkpoints.infer_config`` when it loads;
* ``2`` / ``3``: an IDX file (raw or gzipped) -> ``pivot.datasets.read_idx`` with 1 / 3 dims;
* ``4``: a safetensors file whose 8-byte header length the harness writes (two bytes give the
  header length modulo the body length), so mutations reach the JSON header checks;
* ``5``: the bytes of one ``.npy`` member, which the harness wraps in a zip (stored, or deflated
  when the next byte is odd), so mutations reach the npy header checks;
* ``6``: an int8 model file (``save`` of an int8 ``pivot.ViT``) -> ``pivot.quant.load``.

A reader may only refuse its input with ``WeightsFileError`` / ``DatasetError`` (and the model
builders with ``ValueError`` / ``TypeError``); anything else (``MemoryError``, ``OverflowError``,
``IndexError``, a crash, a hang) is a finding; so is an int8 file refused with anything but
``WeightsFileError``. Run::

    python fuzz/fuzz_loaders.py fuzz/corpus            # until stopped
    python fuzz/fuzz_loaders.py -atheris_runs=1000000 -max_len=4096 corpus_work fuzz/corpus
    python fuzz/make_seeds.py                          # (re)writes the seed corpus fuzz/corpus

Crashers atheris writes (``crash-*``) belong in tests/fuzz_crashers/ (tests/test_rel_fuzz_regressions.py
replays every file there).
"""
import io
import os
import sys
import tempfile
import zipfile

# The checkout's pivot (the one under test), not an installed copy.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import atheris
except ImportError:  # run_one still works without it: tests/test_rel_fuzz_regressions.py replays inputs
    atheris = None

if atheris is not None and __name__ == "__main__":
    with atheris.instrument_imports(include=["pivot"]):  # coverage feedback from pivot's Python code
        import pivot
        import pivot.datasets
        import pivot.checkpoints
        import pivot.io
        import pivot.quant
else:
    import pivot
    import pivot.datasets
    import pivot.io
    import pivot.quant

_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
_STEM = os.path.join(_DIR, f"pivot-fuzz-{os.getpid()}")
SUFFIXES = (".safetensors", ".npz", ".idx", ".idx", ".safetensors", ".npz", ".safetensors")
KINDS = len(SUFFIXES)


def run_one(data: bytes) -> None:
    """Feed one fuzz input to its reader; raise only on a finding."""
    if not data:
        return
    kind, body = data[0] % KINDS, data[1:]
    if kind == 4 and len(body) >= 2:
        header_len = int.from_bytes(body[:2], "little") % (len(body) - 1) if len(body) > 2 else 0
        body = header_len.to_bytes(8, "little") + body[2:]
    elif kind == 5 and body:
        buf = io.BytesIO()
        method = zipfile.ZIP_DEFLATED if body[0] % 2 else zipfile.ZIP_STORED
        with zipfile.ZipFile(buf, "w", method) as archive:
            archive.writestr("w.npy", body[1:])
        body = buf.getvalue()
    path = _STEM + SUFFIXES[kind]
    with open(path, "wb") as f:
        f.write(body)
    try:
        if kind in (0, 1, 4, 5):
            try:
                state, _ = pivot.io.load_state_dict(path)
            except pivot.io.WeightsFileError:
                return
            try:
                if kind in (0, 4):
                    pivot.ViT.from_timm(path)
                else:
                    pivot.checkpoints.infer_config(state, num_heads=1)
            except (ValueError, TypeError):
                return
        elif kind == 6:
            try:
                pivot.quant.load(path)
            except pivot.io.WeightsFileError:
                return
        else:
            try:
                pivot.datasets.read_idx(path, 1 if kind == 2 else 3)
            except pivot.datasets.DatasetError:
                return
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def main():
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
