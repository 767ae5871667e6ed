/*===- kiln.h - the kiln runtime's C API ---------------------------------===*
 *
 * Load an engine made by `kiln compile`, turn prompts into tokens, and
 * tokenize text with the model's tokenizer.json.
 *
 * Errors: every call that can fail returns a kiln_status pointer: NULL on
 * success, else an error the caller reads with kiln_status_message and
 * releases with kiln_status_free. Nothing aborts or throws across the API.
 *
 * Threads:
 *   kiln_model      not thread-safe: one call at a time per model (use a
 *                   lock, or one model per thread); different models are
 *                   independent. While a kiln_executor runs on a model,
 *                   the model takes no other call.
 *   kiln_executor   kiln_request_submit, kiln_request_cancel and
 *                   kiln_executor_stats: any thread, any time (callbacks
 *                   included). kiln_executor_free: once, not from one of
 *                   its callbacks.
 *   kiln_tokenizer  immutable after kiln_tokenizer_load: any number of
 *                   threads may call kiln_tokenize/kiln_detokenize at once.
 *   kiln_chat_template  immutable after kiln_chat_template_load: any number
 *                   of threads may call kiln_chat_template_apply at once.
 *   kiln_status     owned by the caller; not shared.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_status kiln_status;
typedef struct kiln_model kiln_model;
typedef struct kiln_tokenizer kiln_tokenizer;
typedef struct kiln_chat_template kiln_chat_template;

/* What kind of error a status is (KILN_OK for NULL): callers act on the
 * code, never on the message's text. */
typedef enum kiln_code {
  KILN_OK = 0,
  KILN_ERROR = 1,           /* bad arguments or input, a malformed engine or file */
  KILN_KV_CACHE_FULL = 2,   /* the KV pool ran out of pages for it */
  KILN_REQUEST_REFUSED = 3, /* a request that cannot run even alone (its prompt does not fit the pool) */
  KILN_DEVICE_ERROR = 4     /* the device failed: a driver call or a kernel */
} kiln_code;
kiln_code kiln_status_code(const kiln_status *status);
/* The error's text (never NULL for a non-NULL status). */
const char *kiln_status_message(const kiln_status *status);
void kiln_status_free(kiln_status *status);

typedef struct kiln_load_options {
  const char *device;  /* "cuda" (the default when NULL) */
  const char *weights; /* the model directory; NULL: the one the engine was compiled from */
  int64_t kv_pages;    /* KV-cache pages; 0: the engine's plan, within free memory */
  /* Programmatic dependent launch on sm_90: "on", "off", or "auto" (the
     default when NULL: the first decode step is timed both ways, ~35 extra
     replays of it, and the faster kept). */
  const char *overlap;
} kiln_load_options;

void kiln_load_options_init(kiln_load_options *options);

kiln_status *kiln_model_load(const char *engine_path, const kiln_load_options *options, kiln_model **model);
void kiln_model_free(kiln_model *model);
int64_t kiln_model_vocab_size(const kiln_model *model);
int64_t kiln_model_max_seq(const kiln_model *model);
/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"; valid while the model lives. */
const char *kiln_model_device(const kiln_model *model);

/* Called for each new token; return 0 to stop generating. */
typedef int (*kiln_token_callback)(void *user, int64_t token);

typedef struct kiln_generate_options {
  int64_t max_tokens;   /* 32 */
  int64_t min_tokens;   /* 0: end-of-sequence ids are masked until this many */
  float temperature;    /* 0: greedy */
  int64_t top_k;        /* 0: all */
  float top_p;          /* 1: all */
  uint64_t seed;        /* 0; a request's sampled tokens depend on it and its prompt alone */
  const int64_t *stop_tokens; /* besides the model's end-of-sequence ids */
  size_t num_stop_tokens;
  kiln_token_callback on_token; /* NULL: none */
  void *user;
  float min_p;              /* 0: none; drop tokens below min_p times the most likely one's probability */
  float repetition_penalty; /* 1: none; > 0, on every token of the prompt and the output */
  float frequency_penalty;  /* 0: none; in [-2, 2], times each token's count in the output */
  float presence_penalty;   /* 0: none; in [-2, 2], once for each token in the output */
  int logprobs;             /* 0; non-zero: an executor's on_done gets each token's log-probability */
  /* Text and stop strings, executor requests only (kiln_generate and
   * kiln_generate_batch refuse them): with a tokenizer, a request ends at
   * the first of `stop_strings` to appear in its text (the text ends before
   * it; its tokens include the one that completed it), and `on_text`, when
   * not NULL, gets the request's text as it becomes ready -- whole
   * characters, never a piece of a stop string -- and the rest at its end,
   * before on_done, with the submit's `user`. */
  const struct kiln_tokenizer *tokenizer;
  const char *const *stop_strings;
  size_t num_stop_strings;
  void (*on_text)(void *user, uint64_t request, const char *text, size_t len);
} kiln_generate_options;

void kiln_generate_options_init(kiln_generate_options *options);

/* Generates after `prompt`; writes at most `capacity` tokens to `tokens`
 * and their number to `count`. */
kiln_status *kiln_generate(kiln_model *model, const int64_t *prompt, size_t prompt_len,
                           const kiln_generate_options *options, int64_t *tokens, size_t capacity,
                           size_t *count);

/* Several prompts at once, with continuous batching: each prompt is
 * admitted when a batch slot and KV pages are free, sequences decode
 * together, finished ones make room for the next, and prompts that begin
 * alike share their cached KV pages. Every request gets its own tokens
 * (at most `capacity` written, `count` their number) and `status`: NULL
 * when it completed, else why it was refused or cut short (a prompt that
 * cannot fit the KV pool even alone; the caller frees it). The call's own
 * status is for errors that stop everything (bad arguments, the device).
 * `on_token` (may be NULL) gets (user, request index, token); returning 0
 * stops that request. `options->on_token` is not used. */
typedef struct kiln_request {
  const int64_t *prompt;
  size_t prompt_len;
  int64_t *tokens;     /* out: room for `capacity` tokens */
  size_t capacity;
  size_t count;        /* out */
  kiln_status *status; /* out */
  uint64_t seed;       /* this request's sampling seed where has_seed is non-zero, else options->seed */
  int has_seed;
  size_t cached_tokens; /* out: prompt tokens whose KV came from the prefix cache */
} kiln_request;

typedef int (*kiln_request_callback)(void *user, size_t request, int64_t token);

kiln_status *kiln_generate_batch(kiln_model *model, kiln_request *requests, size_t num_requests,
                                 const kiln_generate_options *options, kiln_request_callback on_token, void *user);

/* ---- Serving: requests submitted and cancelled while others run ---------
 *
 * A kiln_executor owns a model's step loop on a thread of its own. Requests
 * are submitted from any thread with their own options (a
 * kiln_generate_options: lengths, sampling, seed, stop tokens; its
 * on_token and user are not used) and admitted at the loop's next step,
 * beside whatever runs. Each request's tokens, as they are made, and its
 * end come through its callbacks on the executor's thread: keep them short
 * (they may submit or cancel). `on_done` is called exactly once per
 * submitted request: `status` NULL when it completed or was cancelled
 * (`cancelled` non-zero), else why it was refused, cut short or the device
 * failed (valid during the call only); `tokens`/`count` all it generated;
 * `logprobs` (NULL unless the request's options ask for them) each one's
 * log-probability under the model (its logits' log-softmax, before
 * temperature, penalties or truncation).
 */
typedef struct kiln_executor kiln_executor;
/* Return 0 to end the request there. */
typedef int (*kiln_stream_callback)(void *user, uint64_t request, int64_t token);
typedef void (*kiln_done_callback)(void *user, uint64_t request, const kiln_status *status, const int64_t *tokens,
                                   const float *logprobs, size_t count, int cancelled);

kiln_status *kiln_executor_start(kiln_model *model, kiln_executor **executor);
/* Ends every open request (cancelled: each gets on_done) and stops. */
void kiln_executor_free(kiln_executor *executor);
/* Refused at once (nothing queued, no callback) for an empty prompt, one
 * too long for the engine, token ids outside the vocabulary, bad sampling
 * options, or an executor whose device failed. */
kiln_status *kiln_request_submit(kiln_executor *executor, const int64_t *prompt, size_t prompt_len,
                                 const kiln_generate_options *options, kiln_stream_callback on_token,
                                 kiln_done_callback on_done, void *user, uint64_t *request);
/* Ends the request at the executor's next step (its on_done reports it
 * cancelled with the tokens it had); unknown or ended requests are
 * ignored. */
void kiln_request_cancel(kiln_executor *executor, uint64_t request);

typedef struct kiln_executor_stats {
  int64_t waiting, prefilling, running;  /* requests queued, prefilling their prompt, decoding */
  int64_t kv_pages, kv_pages_used;       /* the KV pool, and pages held by requests */
  int64_t prompt_tokens, cached_tokens;  /* admitted prompts' tokens, and those the prefix cache held */
  int64_t completed, cancelled, failed;  /* requests ended each way */
  int64_t decode_steps, generated_tokens;
} kiln_executor_stats;
void kiln_executor_stats_get(const kiln_executor *executor, kiln_executor_stats *stats);
/* Blocks until no request is queued, prefilling or decoding. */
void kiln_executor_drain(kiln_executor *executor);

kiln_status *kiln_tokenizer_load(const char *tokenizer_json, kiln_tokenizer **tokenizer);
void kiln_tokenizer_free(kiln_tokenizer *tokenizer);
/* Token ids of `text` (`len` bytes of UTF-8). `count` receives the number of
 * ids, also when it exceeds `capacity` (then only `capacity` are written). */
kiln_status *kiln_tokenize(const kiln_tokenizer *tokenizer, const char *text, size_t len, int64_t *ids,
                           size_t capacity, size_t *count);
/* The text of `ids`, NUL-terminated when it fits; `len` receives its length
 * in bytes without the NUL. */
kiln_status *kiln_detokenize(const kiln_tokenizer *tokenizer, const int64_t *ids, size_t n, char *text,
                             size_t capacity, size_t *len);

/* A model directory's chat template, as transformers applies it:
 * chat_template.jinja, else tokenizer_config.json's chat_template (a string,
 * or named templates of which "default"), with the special tokens of
 * tokenizer_config.json. `*chat` is NULL, with no error, when the directory
 * has no template; a template kiln cannot render (outside the Jinja subset
 * Hugging Face templates use) is an error naming what. */
kiln_status *kiln_chat_template_load(const char *model_dir, kiln_chat_template **chat);
void kiln_chat_template_free(kiln_chat_template *chat);
/* The prompt text of a conversation: `messages_json` a JSON array of message
 * objects (a string "role", "content" and whatever else the template reads),
 * `tools_json` a JSON array or NULL. NUL-terminated when it fits; `len`
 * receives its length in bytes without the NUL. Tokenize it as it is: the
 * special tokens it writes (a BOS among them) become those tokens. The
 * template's own raise_exception is an error with its message. */
kiln_status *kiln_chat_template_apply(const kiln_chat_template *chat, const char *messages_json,
                                      const char *tools_json, int add_generation_prompt, char *text,
                                      size_t capacity, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
