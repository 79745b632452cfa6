"""A KCL record processor run by the MultiLangDaemon (tests/python/test_java.py).

It appends one JSON line per event to the file named by RIFFLE_KCL_OUT:
`initialize`, each `record` (shard, sequence number, partition key, data in
base64), `checkpoint` after every batch, `shard_ended`, `lease_lost`.
stdout belongs to the MultiLangDaemon protocol: nothing else may print there.
"""
import base64
import json
import os
import sys

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor

OUT = os.environ["RIFFLE_KCL_OUT"]


def write(**fields):
    # One write() of one line on an O_APPEND file: lines from the processes
    # of different shards never interleave.
    line = (json.dumps(fields, sort_keys=True) + "\n").encode()
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class RecordProcessor(processor.RecordProcessorBase):
    def __init__(self):
        self.shard_id = None

    def initialize(self, initialize_input):
        self.shard_id = initialize_input.shard_id
        write(event="initialize", shard_id=self.shard_id, sequence_number=initialize_input.sequence_number, pid=os.getpid())

    def process_records(self, process_records_input):
        last = None
        for record in process_records_input.records:
            write(
                event="record",
                shard_id=self.shard_id,
                sequence_number=record.sequence_number,
                sub_sequence_number=record.sub_sequence_number,
                partition_key=record.partition_key,
                data=base64.b64encode(record.binary_data).decode(),
            )
            last = record
        if last is not None:
            self.checkpoint(process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number)

    def checkpoint(self, checkpointer, sequence_number=None, sub_sequence_number=None):
        try:
            checkpointer.checkpoint(sequence_number, sub_sequence_number)
            write(event="checkpoint", shard_id=self.shard_id, sequence_number=sequence_number)
        except kcl.CheckpointError as e:
            write(event="checkpoint_error", shard_id=self.shard_id, sequence_number=sequence_number, error=str(e.value))

    def lease_lost(self, lease_lost_input):
        write(event="lease_lost", shard_id=self.shard_id)

    def shard_ended(self, shard_ended_input):
        write(event="shard_ended", shard_id=self.shard_id)
        self.checkpoint(shard_ended_input.checkpointer)

    def shutdown_requested(self, shutdown_requested_input):
        write(event="shutdown_requested", shard_id=self.shard_id)
        self.checkpoint(shutdown_requested_input.checkpointer)


if __name__ == "__main__":
    sys.stderr.write(f"record processor started, writing to {OUT}\n")
    kcl.KCLProcess(RecordProcessor()).run()
