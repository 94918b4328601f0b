"""Timing of the batch pattern: N keys in one run vs N separate runs (experiment; see batch_pattern.py)."""
import time, shutil, dagster as dg, batch_pattern as P
shutil.rmtree(P.DATA, ignore_errors=True)
with dg.instance_for_test() as inst:
    job = P.defs.resolve_job_def("ingest_job")
    for n in (50, 200):
        keys = [f"t{n}_{i:03d}" for i in range(n)]
        inst.add_dynamic_partitions("sources", keys); P.setup_world(inst, keys)
        t0 = time.perf_counter()
        r = job.execute_in_process(instance=inst, run_config={"ops": {"ingest_chain": {"config": {"keys": keys}}}})
        t = time.perf_counter() - t0
        nev = len(inst.all_logs(r.run_id))
        print(f"batch {n}: {t:.2f}s, {nev} events in run")
    keys = [f"s{i:03d}" for i in range(40)]
    inst.add_dynamic_partitions("sources", keys); P.setup_world(inst, keys)
    t0 = time.perf_counter()
    for k in keys: job.execute_in_process(instance=inst, partition_key=k)
    print(f"single: {(time.perf_counter()-t0)/40*1000:.0f} ms/run")
    t0 = time.perf_counter()
    for k in keys: P.do_source(k); P.do_transcript(k); P.do_chunks(k)
    P.do_embeddings_batch(keys)
    print(f"work alone: {(time.perf_counter()-t0)/40*1000:.1f} ms/key")
