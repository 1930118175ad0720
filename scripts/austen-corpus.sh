#!/usr/bin/env bash
# Extracts the demo atlas corpus from Debian's r-cran-janeaustenr (Jane Austen's six novels, as
# Project Gutenberg texts; the novels are in the public domain, the R packaging is MIT).
#   scripts/austen-corpus.sh [PARAGRAPHS] > samples/austen.jsonl
# One JSON object per line: {"text": paragraph} — the first PARAGRAPHS (default 160) paragraphs of
# at least 200 characters of "Pride & Prejudice", in order.
set -euo pipefail
count=${1:-160}
Rscript --vanilla -e '
  suppressMessages(library(janeaustenr))
  n <- as.integer(commandArgs(trailingOnly = TRUE)[1])
  lines <- prideprejudice
  # Paragraphs are separated by empty lines; chapter headings are short and dropped by length.
  groups <- cumsum(lines == "")
  paras <- vapply(split(lines, groups), function(x) trimws(paste(x[x != ""], collapse = " ")), "")
  paras <- paras[nchar(paras) >= 200]
  esc <- function(s) { s <- gsub("\\\\", "\\\\\\\\", s); s <- gsub("\"", "\\\\\"", s); s }
  cat(paste0("{\"text\": \"", esc(head(paras, n)), "\"}"), sep = "\n")
' "$count"
