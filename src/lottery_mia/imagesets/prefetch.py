"""A background thread that prepares the next batches while the model trains on this one."""

from __future__ import annotations

from typing import Iterator


def _prefetched(make_batches, device, depth: int = 3) -> Iterator:
    """The batches of ``make_batches()``, made ``depth`` ahead by a background thread (on
    CUDA, on a side stream: decode, crop and resize overlap the training step). On CUDA a
    batch is handed over with an event the consumer's stream waits on, and recorded on
    that stream so the allocator never reuses its memory early. The thread's errors are
    raised here; closing the iterator early stops the thread."""
    import queue
    import threading

    import torch

    cuda = torch.device(device).type == "cuda"
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(stream) -> None:
        batches = make_batches()
        try:
            for xb, yb in batches:
                event = None
                if stream is not None:
                    event = torch.cuda.Event()
                    event.record(stream)
                if not put((xb, yb, event)):
                    return
        finally:
            batches.close()
        put(done)

    def work() -> None:
        try:
            if cuda:
                with torch.cuda.device(device):
                    stream = torch.cuda.Stream(device)
                    with torch.cuda.stream(stream):
                        produce(stream)
            else:
                produce(None)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put(err)

    thread = threading.Thread(target=work, name="lottery-mia-batches", daemon=True)
    thread.start()
    try:
        current = torch.cuda.current_stream(device) if cuda else None
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            xb, yb, event = item
            if event is not None:
                current.wait_event(event)
                xb.record_stream(current)
                yb.record_stream(current)
            yield xb, yb
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
