"""Running the `qiyema` command line and `qiyema serve` as separate processes, as operators do."""

import signal
import subprocess
import sys
import time

import httpx

CLI = [sys.executable, "-m", "materials_api.cli"]


def run(env, *args, check=True, timeout=300):
    r = subprocess.run(CLI + list(args), env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stderr}")
    return r


def start_server(env, port, *extra, log=None, timeout=90):
    """`qiyema serve` on 127.0.0.1:port; returns once /healthz answers 200."""
    out = open(log, "ab") if log else subprocess.PIPE
    proc = subprocess.Popen(CLI + ["serve", "--port", str(port), *extra], env=env, stdout=out,
                            stderr=subprocess.STDOUT, text=log is None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {open(log).read()[-3000:] if log else proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("serve did not become healthy")


def stop_server(proc):
    """SIGTERM by PID and wait; SIGKILL if it does not stop."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
