/* A reduced byte-level BPE vocabulary for a caption corpus (internal).
 *
 * `ramc pretrain-clip` trains a CLIP from scratch; CLIP's 49408-token
 * vocabulary would make the token embedding by far its largest tensor while
 * the captions use a few dozen words. This learns BPE merges on the corpus
 * (the ordinary algorithm: repeatedly merge the most frequent adjacent pair,
 * ties broken by the pair's strings, until every corpus word is one symbol)
 * and writes them as Hugging Face vocab.json + merges.txt:
 *   ids 0..255       the 256 byte symbols (bytes_to_unicode, in CLIP's order)
 *   ids 256..511     the same with "</w>"
 *   ids 512..        one symbol per merge result, in merge order
 *   V-2, V-1         <|startoftext|>, <|endoftext|>: the two largest ids, so
 *                    that EOT pooling by argmax finds the end of each text.
 * Words split, cleaned and lower-cased as ramc_tokenize does, so every corpus
 * word encodes to one token; any other text still encodes (byte fallback).
 */
#ifndef RAMC_TEXT_VOCAB_BUILD_H
#define RAMC_TEXT_VOCAB_BUILD_H

#include "core/status.h"

#define VOCAB_BUILD_MAX_MERGES 60000

/* texts: n UTF-8 strings. Writes vocab_json and merges_txt (each atomically:
 * a temporary file renamed over the path). *vocab_size gets V. */
ramc_status vocab_build(const char *const *texts, int n, const char *vocab_json,
                        const char *merges_txt, int *vocab_size);

#endif
