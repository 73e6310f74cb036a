"""Runs each delta tool on each corpus pair and prints one markdown table (see delta.sh)."""

import filecmp
import json
import os
import subprocess
import sys
import tempfile

CORPUS = os.environ["CORPUS"]
UPDRAFT = os.environ["UPDRAFT_BIN"]
PAIRS = os.environ.get("PAIRS", "").split() or sorted(
    p for p in os.listdir(CORPUS) if os.path.isfile(os.path.join(CORPUS, p, "new"))
)
HDIFF_DIFF = (
    "import sys, hdiffpatch as h; o=open(sys.argv[1],'rb').read(); n=open(sys.argv[2],'rb').read();"
    "open(sys.argv[3],'wb').write(h.diff(o, n, h.COMPRESSION_LZMA, validate=False))"
)
HDIFF_APPLY = (
    "import sys, hdiffpatch as h; o=open(sys.argv[1],'rb').read(); d=open(sys.argv[2],'rb').read();"
    "open(sys.argv[3],'wb').write(h.apply(o, d))"
)


TIMEOUT = float(os.environ.get("TIMEOUT", "900"))


class TimedOut(Exception):
    pass


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS in MiB)."""
    try:
        res = subprocess.run(
            ["/usr/bin/time", "-f", "@@%e %M"] + cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise TimedOut()
    last = [l for l in res.stderr.splitlines() if l.startswith("@@")]
    if res.returncode != 0 or not last:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.strip()[-300:]}")
    secs, kib = last[-1][2:].split()
    return float(secs), int(kib) / 1024


def tools(key):
    py = sys.executable
    return [
        (
            "**Updraft** (bsdiff-split+xz)",
            lambda o, n, p: [UPDRAFT, "package", "build", "--key", key, "--model", "bench",
                             "--target-version", "2", "--new", n, "--old", o,
                             "--source-version", "1", "--out", p],
            lambda o, p, n: [UPDRAFT, "package", "apply", "--pubkey", key + ".pub",
                             "--old", o, p, "--out", n],
        ),
        ("bsdiff 4.3 (C)", lambda o, n, p: ["bsdiff", o, n, p], lambda o, p, n: ["bspatch", o, n, p]),
        (
            "xdelta3 -9 -S lzma",
            lambda o, n, p: ["xdelta3", "-9", "-S", "lzma", "-f", "-e", "-s", o, n, p],
            lambda o, p, n: ["xdelta3", "-f", "-d", "-s", o, p, n],
        ),
        (
            "zstd -19 --long=27 --patch-from",
            lambda o, n, p: ["zstd", "-q", "-f", "-19", "--long=27", "--patch-from=" + o, n, "-o", p],
            lambda o, p, n: ["zstd", "-q", "-f", "-d", "--long=27", "--patch-from=" + o, p, "-o", n],
        ),
        (
            "HDiffPatch (lzma)",
            lambda o, n, p: [py, "-c", HDIFF_DIFF, o, n, p],
            lambda o, p, n: [py, "-c", HDIFF_APPLY, o, p, n],
        ),
    ]


def payload_size(pkg):
    out = subprocess.run([UPDRAFT, "package", "inspect", "--json", pkg], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["payload"]["size"]


def main():
    rows = []
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "key")
        subprocess.run([UPDRAFT, "package", "keygen", "--out", key], check=True, capture_output=True)
        for pair in PAIRS:
            old = os.path.join(CORPUS, pair, "old")
            new = os.path.join(CORPUS, pair, "new")
            results = {}
            for name, diff, apply in tools(key):
                patch = os.path.join(tmp, "patch")
                out = os.path.join(tmp, "out")
                for f in (patch, out):
                    if os.path.exists(f):
                        os.remove(f)
                try:
                    d_s, d_mib = timed(diff(old, new, patch))
                except TimedOut:
                    rows.append(f"| {pair} | {name} | - | > {TIMEOUT:.0f} (stopped) | - | - | - | - |")
                    results[name] = (float("inf"), float("inf"), float("inf"))
                    continue
                a_s, a_mib = timed(apply(old, patch, out))
                ok = filecmp.cmp(out, new, shallow=False)
                size = os.path.getsize(patch)
                shown = f"{size:,}"
                if name.startswith("**Updraft"):
                    payload = payload_size(patch)
                    shown = f"{size:,} ({payload:,})"
                results[name] = (size, d_s, d_mib)
                rows.append(f"| {pair} | {name} | {shown} | {d_s:.2f} | {a_s:.2f} | "
                            f"{d_mib:,.0f} | {a_mib:,.0f} | {'yes' if ok else '**NO**'} |")
            ours = results[next(n for n in results if n.startswith("**Updraft"))]
            peers = {n: r for n, r in results.items() if not n.startswith("**Updraft")}
            best = min(r[0] for r in peers.values())
            hdiff = peers["HDiffPatch (lzma)"]
            bsd = peers["bsdiff 4.3 (C)"]
            # Whole package (what a device downloads) against the smallest peer delta:
            # 0.95x, or 1.00x where the images are compressed inside (uefi-ovmf).
            target = 1.00 if pair.startswith("uefi") else 0.95
            ratio = ours[0] / best
            verdicts.append(
                f"| {pair} | {ours[0]:,} vs {best:,} = {ratio:.3f}x: "
                f"{'met' if ratio <= target else 'NOT met'} (<= {target:.2f}x) "
                f"| {ours[1]:.2f} vs {hdiff[1]:.2f} = {ours[1] / hdiff[1]:.2f}x: "
                f"{'met' if ours[1] <= 2 * hdiff[1] else 'NOT met'} "
                f"| {ours[2]:,.0f} vs {hdiff[2]:,.0f}: {'met' if ours[2] <= hdiff[2] else 'NOT met'} "
                f"| {bsd[1]:.2f} |"
            )
    print("| pair | tool | delta bytes | diff s | apply s | diff peak RSS MiB | apply peak RSS MiB | round trip |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print()
    print("Updraft delta bytes: whole package (payload in parentheses); targets use the whole package.")
    print()
    print("| pair | package vs smallest peer | diff s vs HDiffPatch (<= 2x) | diff RSS MiB <= HDiffPatch | bsdiff (C) diff s |")
    print("|---|---|---|---|---|")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
