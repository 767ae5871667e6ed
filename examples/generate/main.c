/* An app that embeds the kiln runtime through its C API: loads an engine,
 * tokenizes a prompt with the model's tokenizer.json (or takes token ids),
 * generates, prints the tokens (and text).
 *
 *   kiln-example-generate ENGINE [--tokenizer tokenizer.json] [--weights DIR]
 *                         (--prompt TEXT | --ids 1,2,3) [--max-tokens N]
 *                         [--device auto|cuda|host]
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

static int print_token(void *user, int64_t token) {
  (void)user;
  printf("%lld ", (long long)token);
  fflush(stdout);
  return 1;
}

int main(int argc, char **argv) {
  const char *engine = NULL, *tok_path = NULL, *weights = NULL, *prompt = NULL, *ids_arg = NULL, *device = NULL;
  int64_t max_tokens = 16;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
    else if (!strcmp(argv[i], "--weights") && i + 1 < argc) weights = argv[++i];
    else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = argv[++i];
    else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
    else if (!strcmp(argv[i], "--max-tokens") && i + 1 < argc) max_tokens = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
    else if (!engine && argv[i][0] != '-') engine = argv[i];
    else {
      fprintf(stderr, "usage: %s ENGINE [--tokenizer T] [--weights DIR] (--prompt TEXT | --ids 1,2) [--max-tokens N] "
                      "[--device auto|cuda|host]\n",
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
