"""The grader's peak memory when a kernel sends messages built to expand when decoded.

    .venv/bin/python -m tests.bench.wire

For each message (a reply of 64 MB of `[], [], ...`, an output of 7 MB of `{}, {}, ...`)
and each client (jupyter_client's own, the grader's `BoundedClient`), a fresh process
starts a plain kernel (no sandbox: the client is what is measured), runs one cell that
sends the message, and prints its own peak RSS, and what the cell's reply said.
"""
import json
import resource
import subprocess
import sys

CELL = """_k = get_ipython().kernel
_send = _k.session.send
_left = [1]
def _fat(stream, msg_or_type, content=None, *args, **kwargs):
    if isinstance(msg_or_type, dict) and msg_or_type.get("msg_type") == {kind!r} and _left[0]:
        _left[0] -= 1   # a message built already (output)
        msg_or_type = {{**msg_or_type, "content": {{**msg_or_type["content"], "junk": {junk}}}}}
    elif msg_or_type == {kind!r} and _left[0] and isinstance(content, dict):
        _left[0] -= 1   # a type and its content (a reply)
        content = {{**content, "junk": {junk}}}
    return _send(stream, msg_or_type, content, *args, **kwargs)
_k.session.send = _fat
print("printed")
"""
MESSAGES = {"reply: 64 MB of [], [], ...": ("execute_reply", "[[]] * 16_000_000"),
            "output: 7 MB of {}, {}, ...": ("stream", "[{}] * 1_800_000")}


def one(client, message):
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    from nopos.grading.sandbox import BoundedClient

    async def go():
        km = AsyncKernelManager()
        if client == "bounded":
            km.client_factory = BoundedClient
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
        kind, junk = MESSAGES[message]
        msg_id = kc.execute(CELL.format(kind=kind, junk=junk))
        status, outputs = "no reply", []
        while True:
            reply = await kc.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                status = reply["content"].get("ename") or reply["content"]["status"]
                break
        while True:
            try:
                msg = await kc.get_iopub_msg(timeout=3)
            except Exception:
                break
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"][:70].strip())
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return base, status, outputs

    base, status, outputs = asyncio.run(go())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(json.dumps({"base_mb": base, "peak_mb": peak, "reply": status, "outputs": outputs}))


def main():
    print(f"{'message':<30} {'client':<16} {'ready MB':>8} {'peak MB':>8}  reply / outputs")
    for message in MESSAGES:
        for client in ("jupyter_client", "bounded"):
            run = subprocess.run([sys.executable, "-m", "tests.bench.wire", client, message],
                                 capture_output=True, text=True, timeout=600)
            try:
                got = json.loads(run.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                print(f"{message:<30} {client:<16} failed: {run.stderr[-300:]}")
                continue
            print(f"{message:<30} {client:<16} {got['base_mb']:>8} {got['peak_mb']:>8}  "
                  f"{got['reply']} / {got['outputs']}")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        one(*sys.argv[1:])
    else:
        main()
