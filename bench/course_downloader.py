#!/usr/bin/env python3
"""The course's downloader ("Asynchronous Concurrency: Futures"), for the
side-by-side bench: the same code, with the URLs from a file and the
number of workers from the command line.
Usage: course_downloader.py WORKERS URL_LIST (run inside the target folder)
"""
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
import os
import sys
import urllib.request


def downloader(url):
    req = urllib.request.urlopen(url)
    filename = os.path.basename(url)
    ext = os.path.splitext(url)[1]
    if not ext:
        raise RuntimeError("URL does not contain an extension")

    with open(filename, 'wb') as file_handle:
        while True:
            chunk = req.read(1024)
            if not chunk:
                break
            file_handle.write(chunk)
    msg = 'Finished downloading {filename}'.format(filename=filename)
    return msg


def main(urls, workers):
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(downloader, url) for url in urls]
        for future in as_completed(futures):
            print(future.result())


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        main([line.strip() for line in f if line.strip()], int(sys.argv[1]))
