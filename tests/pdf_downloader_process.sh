#!/usr/bin/env bash
# tests/pdf_downloader.sh on the process pool (--executor process). A test
# of its own, so that make -j runs it beside the thread pool's run: each
# spends most of its 30 s waiting on the timeouts and retries it tests.
# Skips (77) where cfutures has no process pool, and as pdf_downloader.sh does.
src=${top_srcdir:-.}
grep -q process_pool_executor_new "$src/include/cfutures.h" ||
    { echo "no process pool in this build: skipped"; exit 77; }
PDFDL_EXECUTOR=process exec bash "$src/tests/pdf_downloader.sh"
