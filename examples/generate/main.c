/* An app that embeds the kiln runtime through its C API: loads an engine,
 * tokenizes a prompt with the model's tokenizer.json (or takes token ids),
 * generates, prints the tokens (and text).
 *
 *   kiln-example-generate ENGINE [--tokenizer tokenizer.json] [--weights DIR]
 *                         (--prompt TEXT | --ids 1,2,3) [--max-tokens N]
 *                         [--device auto|cuda|host] [--requests N [--temperature T]]
 *
 * With --requests N the prompt goes N times through an executor (the
 * serving API: requests submitted while others run), request i sampled
 * with seed i; each request's tokens are printed as it ends.
 */
#include "kiln/kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(kiln_status *s, const char *what) {
  if (!s)
    return 0;
  fprintf(stderr, "%s: %s\n", what, kiln_status_message(s));
  kiln_status_free(s);
  return 1;
}

/* One request of --requests: its tokens, filled by on_done on the
 * executor's thread, read after kiln_executor_drain. */
typedef struct {
  int64_t tokens[1024];
  size_t count;
  int ended, cancelled;
  char error[256];
} outcome;

static void on_done(void *user, uint64_t request, const kiln_status *status, const int64_t *tokens,
                    const float *logprobs, size_t count, int cancelled) {
  outcome *o = (outcome *)user;
  (void)request;
  (void)logprobs;
  o->count = count < 1024 ? count : 1024;
  memcpy(o->tokens, tokens, o->count * sizeof(int64_t));
  o->cancelled = cancelled;
  if (status)
    snprintf(o->error, sizeof o->error, "%s", kiln_status_message(status));
  o->ended = 1;
}

static int serve(kiln_model *model, const int64_t *ids, size_t n, int requests, int64_t max_tokens,
                 float temperature) {
  kiln_executor *ex = NULL;
  if (failed(kiln_executor_start(model, &ex), "executor"))
    return 1;
  outcome *out = calloc((size_t)requests, sizeof(outcome));
  int rc = 0;
  for (int i = 0; i < requests && !rc; ++i) {
    kiln_generate_options go;
    kiln_generate_options_init(&go);
    go.max_tokens = max_tokens;
    go.temperature = temperature;
    go.seed = (uint64_t)i;
    uint64_t id = 0;
    rc = failed(kiln_request_submit(ex, ids, n, &go, NULL, on_done, &out[i], &id), "submit");
  }
  kiln_executor_drain(ex);
  kiln_executor_stats st;
  kiln_executor_stats_get(ex, &st);
  for (int i = 0; i < requests; ++i) {
    printf("request %d:", i);
    for (size_t t = 0; t < out[i].count; ++t)
      printf(" %lld", (long long)out[i].tokens[t]);
    printf("%s%s\n", out[i].error[0] ? " error: " : "", out[i].error);
  }
  printf("completed %lld, prompt tokens %lld (%lld from the prefix cache), %lld decode steps\n",
         (long long)st.completed, (long long)st.prompt_tokens, (long long)st.cached_tokens,
         (long long)st.decode_steps);
  kiln_executor_free(ex);
  free(out);
  return rc;
}

static int print_token(void *user, int64_t token) {
  (void)user;
  printf("%lld ", (long long)token);
  fflush(stdout);
  return 1;
}

int main(int argc, char **argv) {
  const char *engine = NULL, *tok_path = NULL, *weights = NULL, *prompt = NULL, *ids_arg = NULL, *device = NULL;
  int64_t max_tokens = 16;
  int requests = 0;
  float temperature = 0.0f;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
    else if (!strcmp(argv[i], "--weights") && i + 1 < argc) weights = argv[++i];
    else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = argv[++i];
    else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
    else if (!strcmp(argv[i], "--max-tokens") && i + 1 < argc) max_tokens = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc) requests = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--temperature") && i + 1 < argc) temperature = (float)atof(argv[++i]);
    else if (!engine && argv[i][0] != '-') engine = argv[i];
    else {
      fprintf(stderr, "usage: %s ENGINE [--tokenizer T] [--weights DIR] (--prompt TEXT | --ids 1,2) [--max-tokens N] "
                      "[--device auto|cuda|host] [--requests N [--temperature T]]\n",
              argv[0]);
      return 2;
    }
  }
  if (!engine || (!prompt && !ids_arg))
    return fprintf(stderr, "give an engine and --prompt or --ids\n"), 2;

  int64_t ids[4096];
  size_t n = 0;
  kiln_tokenizer *tok = NULL;
  if (tok_path && failed(kiln_tokenizer_load(tok_path, &tok), "tokenizer"))
    return 1;
  if (prompt) {
    if (!tok)
      return fprintf(stderr, "--prompt needs --tokenizer\n"), 2;
    if (failed(kiln_tokenize(tok, prompt, strlen(prompt), ids, 4096, &n), "tokenize"))
      return 1;
  } else {
    for (char *p = (char *)ids_arg; *p && n < 4096;) {
      ids[n++] = strtoll(p, &p, 10);
      if (*p == ',')
        ++p;
    }
  }

  kiln_load_options lo;
  kiln_load_options_init(&lo);
  lo.weights = weights;
  lo.device = device;
  kiln_model *model = NULL;
  if (failed(kiln_model_load(engine, &lo, &model), "load")) {
    kiln_tokenizer_free(tok);
    return 1;
  }
  printf("device: %s\n", kiln_model_device(model));
  if (requests > 0) {
    int rc = serve(model, ids, n, requests, max_tokens, temperature);
    kiln_model_free(model);
    kiln_tokenizer_free(tok);
    return rc;
  }
  kiln_generate_options go;
  kiln_generate_options_init(&go);
  go.max_tokens = max_tokens;
  go.on_token = print_token;
  int64_t *out = calloc((size_t)max_tokens, sizeof(int64_t));
  size_t count = 0;
  int rc = failed(kiln_generate(model, ids, n, &go, out, (size_t)max_tokens, &count), "generate");
  printf("\n");
  if (!rc && tok) {
    char text[16384];
    size_t len = 0;
    if (!failed(kiln_detokenize(tok, out, count, text, sizeof(text), &len), "detokenize"))
      printf("%s\n", text);
  }
  free(out);
  kiln_model_free(model);
  kiln_tokenizer_free(tok);
  return rc;
}
