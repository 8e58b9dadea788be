// check_topo_errors: the topology loader (common/ffs_topo.c) refuses every
// kind of bad file with one line naming the right file:line; with them, the
// resolved graph: its typed edges, a tap stage, the facts kinds take from
// one another. Each test writes its YAML into a fresh temp folder under /tmp.
#include "t_topo_util.h"

// ---- errors: each names the right line ----

START_TEST(test_err_unknown_key) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - name: l2\n"
                   "    kind: ff_layer\n"
                   "    unit: 5\n"
                   "  - {name: out, kind: readout}\n",
                   5,
                   "stage 'l2': unknown key 'unit' (expected one of: name, kind, units, core, "
                   "host, goodness, theta, temp, optimizer, lr, momentum, weight_decay, cooldown, "
                   "peer_lambda, peer_decay, update, delay_ms, shards, eval_average)");
  s_expect_fail_at("seed: 1\nstage: []\n", 2, "unknown key 'stage' (expected one of: name, seed");
  s_expect_fail_at("train:\n  epochs: 1\n  epoch: 2\n", 3, "train: unknown key 'epoch'");
}
END_TEST

START_TEST(test_err_key_of_other_kind) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - name: out\n"
                   "    kind: readout\n"
                   "    units: 5\n",
                   6, "stage 'out': key 'units' does not apply to a readout");
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source,\n"
                   "     lr: 0.1}\n",
                   3, "stage 'src': key 'lr' does not apply to a source");
}
END_TEST

START_TEST(test_err_wrong_type) {
  s_expect_fail_at("name: x\n"
                   "train:\n"
                   "  batch: 10\n"
                   "  epochs: ten\n",
                   4, "train.epochs: expected an integer >= 1, got 'ten'");
  s_expect_fail_at("train: {batch: 1.5}\n", 1, "train.batch: expected an integer in 1..10000");
  s_expect_fail_at("layer:\n  lr: [1]\n", 2, "layer.lr: expected a number > 0, got a sequence");
  s_expect_fail_at("layer:\n  momentum: 1\n", 2, "layer.momentum: expected a number in [0, 1)");
  s_expect_fail_at("layer:\n  eval_average: 1.5\n", 2,
                   "layer.eval_average: expected a number in [0, 1)");
  s_expect_fail_at("layer:\n  cooldown: maybe\n", 2, "layer.cooldown: expected true or false");
  s_expect_fail_at("layer:\n\n  lr: nan\n", 3, "layer.lr: expected a number > 0, got 'nan'");
  s_expect_fail_at("transport: zmq\n", 1, "transport: expected one of ipc, inproc, tcp, got 'zmq'");
  s_expect_fail_at("seed: -1\n", 1, "seed: expected an integer");
  s_expect_fail_at("data: fashion\n", 1, "data: expected a mapping");
  s_expect_fail_at("tcp: {ports: [80, 90]}\n", 1,
                   "tcp.ports: FIRST: expected an integer in 1024..65535, got '80'");
  s_expect_fail_at("\nstages: {a: 1}\n", 2, "stages: expected a sequence");
  s_expect_fail_at("name: 'a b'\n", 1, "name: expected 1..31 characters");
}
END_TEST

START_TEST(test_err_duplicate_key) {
  s_expect_fail_at("train:\n"
                   "  epochs: 1\n"
                   "  batch: 2\n"
                   "  epochs: 3\n",
                   4, "duplicate key 'epochs' (first at line 2");
}
END_TEST

START_TEST(test_err_duplicate_stage) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: out, kind: readout}\n",
                   4, "stage 'l1': duplicate stage name (first at line 3");
}
END_TEST

START_TEST(test_err_stage_names) {
  s_expect_fail_at("stages:\n  - {kind: source}\n", 2, "stage 1: missing required key 'name'");
  s_expect_fail_at("stages:\n  - {name: 'l 1', kind: source}\n", 2, "stage 1: name: expected");
  s_expect_fail_at("stages:\n  - {name: train, kind: source}\n", 2, "the name is reserved");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n  - 5\n", 3,
                   "stage 2: expected a mapping");
}
END_TEST

START_TEST(test_err_unknown_kind) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - name: l1\n"
                   "    kind: layer\n"
                   "  - {name: out, kind: readout}\n",
                   4, "stage 'l1': kind: expected one of source, ff_layer, readout, tap, dp_layer, "
                   "mirror_layer, got 'layer'");
  s_expect_fail_at("stages:\n  - {name: src}\n", 2, "stage 'src': missing required key 'kind'");
}
END_TEST

START_TEST(test_err_missing_units) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - name: l1\n"
                   "    kind: ff_layer\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'l1': missing required key 'units'");
}
END_TEST

START_TEST(test_err_source_not_first) {
  s_expect_fail_at("stages:\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'src': the source must be the first stage");
  s_expect_fail_at("stages:\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: l2, kind: ff_layer, units: 5}\n"
                   "  - {name: out, kind: readout}\n",
                   2, "no source");
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: s2, kind: source}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 's2': a second source (the first is 'src' at line 2");
}
END_TEST

START_TEST(test_err_readouts) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: r1, kind: readout}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: r2, kind: readout}\n",
                   5, "stage 'r2': a second readout (the first is 'r1' at line 3");
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: r1, kind: readout}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n",
                   3, "stage 'r1': the readout must come after every ff_layer ('l1' at line 4");
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: ff_layer, units: 5}\n"
                   "  - {name: l2, kind: ff_layer, units: 5}\n",
                   4, "no readout");
}
END_TEST

START_TEST(test_err_stage_count) {
  s_expect_fail_at("stages:\n"
                   "  - {name: src, kind: source}\n"
                   "  - {name: out, kind: readout}\n",
                   2, "stages: expected at least 3 stages");
  s_expect_fail_at("seed: 3\n", 1, "missing required key 'stages'");
  char text[4096];
  size_t at = (size_t)snprintf(text, sizeof text, "stages:\n");
  for (int i = 0; i < FFS_MAX_STAGES + 1; i++)
    at += (size_t)snprintf(text + at, sizeof text - at,
                           "  - {name: l%d, kind: ff_layer, units: 1}\n", i);
  s_expect_fail_at(text, 2 + FFS_MAX_STAGES, "stages: more than 32 stages");
}
END_TEST

START_TEST(test_err_energy_list) {
  const char *head = "stages:\n"
                     "  - {name: src, kind: source}\n"
                     "  - {name: l1, kind: ff_layer, units: 5}\n"
                     "  - name: out\n"
                     "    kind: readout\n";
  char text[1024];
  snprintf(text, sizeof text, "%s    energy:\n      - l1\n      - src\n", head);
  s_expect_fail_at(
      text, 8, "stage 'out': energy: 'src' is a source, not an ff_layer (expected ff_layers: l1)");
  snprintf(text, sizeof text, "%s    softmax: [l1, l9]\n", head);
  s_expect_fail_at(text, 6, "stage 'out': softmax: no stage named 'l9'");
  snprintf(text, sizeof text, "%s    energy: [l1, l1]\n", head);
  s_expect_fail_at(text, 6, "'l1' is listed twice");
  // energy: [] switches energy inference off: then softmax must be primary
  snprintf(text, sizeof text, "%s    energy: []\n", head);
  s_expect_fail_at(text, 4, "stage 'out': primary: energy needs a non-empty energy list");
  ffs_topo_t t;
  snprintf(text, sizeof text, "%s    energy: []\n    primary: softmax\n", head);
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.stages[2].n_energy, 0);
  // hybrid negatives show no label: energy inference is refused, softmax-only loads
  snprintf(text, sizeof text, "train: {negatives: hybrid}\n%s    primary: softmax\n", head);
  s_expect_fail_at(text, 5, "hybrid negatives carry no label");
  snprintf(text, sizeof text, "train: {negatives: hybrid}\n%s    energy: []\n    primary: softmax\n",
           head);
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.negatives, FFS_NEG_HYBRID);
  snprintf(text, sizeof text, "%s    energy: l1\n", head);
  s_expect_fail_at(text, 6, "expected a non-empty list of ff_layer names like [l1], got 'l1'");
  snprintf(text, sizeof text, "%s    primary: both\n", head);
  s_expect_fail_at(text, 6, "stage 'out': primary: expected one of energy, softmax");
  // the same error with a sharded layer (more stages than entries): the
  // readout's own entry, line 4, is named
  snprintf(text, sizeof text, "%s    energy: []\n", head);
  const char *ov = "l1.shards=2";
  ck_assert_int_eq(s_load(&t, text, &ov, 1), -1);
  snprintf(text, sizeof text, "%s/t.yaml:4: ", s_dir);
  s_expect_err(text, "primary: energy needs a non-empty energy list");
}
END_TEST

// The typed edges of a graph: data along the chain (to each shard) and to
// a tap, a report per layer shard on its group's channel, peers between
// siblings, feedback latest-wins; the source is the stage no data enters.
START_TEST(test_edges) {
  char text[1024];
  snprintf(text, sizeof text, "%s  - {name: t1, kind: tap, layer: l1}\nfeedback:\n"
           "  - {from: out, to: src}\n", s_min);
  ffs_topo_t t;
  const char *ov = "l2.shards=2";
  ck_assert_msg(s_load(&t, text, &ov, 1) == 0, "%s", s_err);
  // src 0, l1 1, l2.0 2, l2.1 3, out 4, t1 5
  ffs_edge_t e[FFS_MAX_EDGES];
  int n = ffs_topo_edges(&t, e, FFS_MAX_EDGES), count[4] = {0};
  for (int k = 0; k < n; k++) count[e[k].type]++;
  ck_assert_int_eq(count[FFS_EDGE_DATA], 4);   // src->l1, l1->l2.0, l1->l2.1, l1->t1
  ck_assert_int_eq(count[FFS_EDGE_REPORT], 3); // l1, l2.0, l2.1
  ck_assert_int_eq(count[FFS_EDGE_PEER], 2);   // l2.0 <-> l2.1
  ck_assert_int_eq(count[FFS_EDGE_FEEDBACK], 1);
  ck_assert_int_eq(n, 10);
  int tap = 0, rep_l2 = 0;
  for (int k = 0; k < n; k++) {
    tap += e[k].type == FFS_EDGE_DATA && e[k].from == 1 && e[k].to == 5 && e[k].width == 20;
    rep_l2 += e[k].type == FFS_EDGE_REPORT && e[k].to == 4 && e[k].sub == 2 && e[k].width == 11;
    if (e[k].type == FFS_EDGE_FEEDBACK)
      ck_assert(e[k].policy == FFS_POLICY_LATEST && e[k].from == 4 && e[k].to == 0);
    if (e[k].type == FFS_EDGE_DATA) ck_assert(e[k].policy == FFS_POLICY_BLOCK);
  }
  ck_assert_int_eq(tap, 1);
  ck_assert_int_eq(rep_l2, 2); // both shards of l2 on l2's channel
  ck_assert_int_eq(ffs_topo_streamer(&t), 0);
  ck_assert_int_eq(ffs_topo_edges(&t, e, 3), n); // the count, whatever fits
}
END_TEST

// A chain of dp_layers: data edges up, one reliable backward edge per layer
// to the one below (as wide as the lower layer's units), reports from the
// top only; the source sends labelled rows, the readout scores the top.
static const char *s_dp = "stages:\n"                                          // 1
                          "  - {name: src, kind: source}\n"                    // 2
                          "  - {name: l1, kind: dp_layer, units: 20}\n"        // 3
                          "  - {name: l2, kind: dp_layer, units: 16, alpha: 0}\n" // 4
                          "  - {name: top, kind: dp_layer, units: 10}\n"       // 5
                          "  - {name: out, kind: readout}\n";                  // 6

START_TEST(test_dualprop_chain) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_dp, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.supervised, 1);
  ck_assert_int_eq(t.stages[4].primary, FFS_INFER_SOFTMAX);
  ck_assert_int_eq(t.timing, FFS_TIMING_LOCKSTEP);
  ck_assert_int_eq(t.stages[2].in_dim, 20);
  ck_assert_int_eq(ffs_topo_max_rows(&t), t.batch > t.eval_batch ? t.batch : t.eval_batch);
  ffs_edge_t e[FFS_MAX_EDGES];
  int n = ffs_topo_edges(&t, e, FFS_MAX_EDGES), count[4] = {0};
  for (int k = 0; k < n; k++) count[e[k].type]++;
  ck_assert_int_eq(count[FFS_EDGE_DATA], 3);   // src->l1->l2->top
  ck_assert_int_eq(count[FFS_EDGE_REPORT], 1); // top only
  ck_assert_int_eq(count[FFS_EDGE_FEEDBACK], 2);
  for (int k = 0; k < n; k++) {
    if (e[k].type == FFS_EDGE_REPORT) ck_assert(e[k].from == 3 && e[k].width == 11);
    if (e[k].type != FFS_EDGE_FEEDBACK) continue;
    ck_assert(e[k].policy == FFS_POLICY_RELIABLE && e[k].to == e[k].from - 1);
    ck_assert_int_eq(e[k].width, e[k].from == 3 ? 16 : 20); // the lower layer's units
  }
  const char *ov = "train.timing=pipelined";
  ck_assert_msg(s_load(&t, s_dp, &ov, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.timing, FFS_TIMING_PIPELINED);
}
END_TEST

START_TEST(test_err_dualprop) {
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20}\n"
                   "  - {name: l2, kind: ff_layer, units: 10}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   4, "stage 'l2': a ff_layer in a chain of dp_layers");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20}\n"
                   "  - {name: l2, kind: ff_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   4, "a dp_layer in a chain that ends with a ff_layer");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20}\n"
                   "  - {name: top, kind: dp_layer, units: 12}\n  - {name: out, kind: readout}\n",
                   4, "stage 'top': units: 12, but the last dp_layer gives the class scores "
                   "(expected units: 10");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, alpha: 1.5}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   3, "stage 'l1': alpha: 1.5 (expected a number in [0, 1]");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, rule: hebb}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   3, "stage 'l1': rule: expected one of dualprop, backprop");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, dampened: true}\n"
                   "  - {name: top, kind: dp_layer, units: 10,\n     dampened: true}\n"
                   "  - {name: out, kind: readout}\n",
                   5, "stage 'top': dampened: a model's last layer learns from the label alone "
                   "(expected dampened on hidden layers only)");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, rule: backprop,\n"
                   "     dampened: true}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   4, "stage 'l1': dampened: true damps the dyads of rule dualprop");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, dampened: 2}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   3, "stage 'l1': dampened");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: l1, kind: dp_layer, units: 20, goodness: ssq}\n"
                   "  - {name: top, kind: dp_layer, units: 10}\n  - {name: out, kind: readout}\n",
                   3, "goodness");
  char text[1024];
  snprintf(text, sizeof text, "%sfeedback:\n  - {from: top, to: l1}\n", s_dp);
  s_expect_fail_at(text, 8, "feedback top -> l1: the dp_layers' backward edges are made for them");
  snprintf(text, sizeof text, "train: {ticks: 3}\n%s", s_dp);
  s_expect_fail_at(text, 1, "train.ticks: 3, but dp_layers are not recurrent");
  snprintf(text, sizeof text, "train: {timing: free-running}\n%s", s_dp);
  s_expect_fail_at(text, 1, "train.timing: free-running is the recurrent form's");
  snprintf(text, sizeof text, "%s", s_dp);
  char *ro = strstr(text, "{name: out, kind: readout}");
  snprintf(ro, sizeof text - (size_t)(ro - text), "{name: out, kind: readout, primary: energy}\n");
  s_expect_fail_at(text, 6, "primary: energy needs goodness");
}
END_TEST

// Two twin pipelines of mirror_layers: each layer fed by the one before it
// in its own model (the first ones by the source), lateral edges both ways
// between hidden twins, every layer reporting; the tops have no twin.
static const char *s_mir = "stages:\n"                                                    // 1
                           "  - {name: src, kind: source}\n"                              // 2
                           "  - {name: a1, kind: mirror_layer, model: a, units: 20}\n"    // 3
                           "  - {name: a_top, kind: mirror_layer, model: a, units: 10}\n" // 4
                           "  - {name: b1, kind: mirror_layer, model: b, units: 20}\n"    // 5
                           "  - {name: b_top, kind: mirror_layer, model: b, units: 10}\n" // 6
                           "  - {name: out, kind: readout}\n";                            // 7

START_TEST(test_mirror_twins) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_mir, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.supervised, 1);
  ck_assert_int_eq(t.stages[3].in_from, 0); // b1 from the source
  ck_assert_int_eq(t.stages[3].in_dim, t.stages[0].out_dim);
  ck_assert_int_eq(t.stages[4].in_from, 3); // b_top from b1
  ck_assert_int_eq(t.stages[1].twin, 3);
  ck_assert_int_eq(t.stages[3].twin, 1);
  ck_assert_int_eq(t.stages[2].twin, -1);
  ffs_edge_t e[FFS_MAX_EDGES];
  int n = ffs_topo_edges(&t, e, FFS_MAX_EDGES), count[4] = {0}, lateral = 0;
  for (int k = 0; k < n; k++) count[e[k].type]++;
  ck_assert_int_eq(count[FFS_EDGE_DATA], 4);   // src->a1, a1->a_top, src->b1, b1->b_top
  ck_assert_int_eq(count[FFS_EDGE_REPORT], 4); // every layer
  ck_assert_int_eq(count[FFS_EDGE_FEEDBACK], 2);
  for (int k = 0; k < n; k++)
    lateral += e[k].type == FFS_EDGE_FEEDBACK && e[k].policy == FFS_POLICY_RELIABLE &&
               e[k].width == 20 &&
               ((e[k].from == 1 && e[k].to == 3) || (e[k].from == 3 && e[k].to == 1));
  ck_assert_int_eq(lateral, 2);
}
END_TEST

START_TEST(test_err_mirror) {
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, units: 10}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'a1': missing required key 'model'");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: c, units: 10}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'a1': model: expected one of a, b");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 20}\n"
                   "  - {name: a_top, kind: mirror_layer, model: a, units: 10}\n"
                   "  - {name: b_top, kind: mirror_layer, model: b, units: 10}\n"
                   "  - {name: out, kind: readout}\n",
                   2, "stages: model a has 2 mirror_layers, model b 1");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 20}\n"
                   "  - {name: a_top, kind: mirror_layer, model: a, units: 10}\n"
                   "  - {name: b1, kind: mirror_layer, model: b, units: 30}\n"
                   "  - {name: b_top, kind: mirror_layer, model: b, units: 10}\n"
                   "  - {name: out, kind: readout}\n",
                   5, "stage 'b1': units: 30, but its twin 'a1' has 20");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 12}\n"
                   "  - {name: b1, kind: mirror_layer, model: b, units: 12}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'a1': units: 12, but a model's last layer gives the class");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 10}\n"
                   "  - {name: b1, kind: ff_layer, units: 10}\n"
                   "  - {name: out, kind: readout}\n",
                   4, "stage 'b1': a ff_layer among mirror_layers");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 10, objective: hebb}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'a1': objective: expected one of cosine, infonce, supcon");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 10, head: -1}\n"
                   "  - {name: out, kind: readout}\n",
                   3, "stage 'a1': head: ");
  s_expect_fail_at("stages:\n  - {name: src, kind: source}\n"
                   "  - {name: a1, kind: mirror_layer, model: a, units: 20}\n"
                   "  - {name: a_top, kind: mirror_layer, model: a, units: 10}\n"
                   "  - {name: b1, kind: mirror_layer, model: b, units: 20}\n"
                   "  - {name: b_top, kind: mirror_layer, model: b, units: 10,\n"
                   "     head: 1}\n"
                   "  - {name: out, kind: readout}\n",
                   7, "stage 'b_top': head: a model's last layer learns from the label alone "
                   "(expected head on hidden layers only)");
  char text[1024];
  snprintf(text, sizeof text, "%sfeedback:\n  - {from: b1, to: a1}\n", s_mir);
  s_expect_fail_at(text, 9, "feedback: the mirror_layers' lateral edges are made for them");
}
END_TEST

// A side stage (tap) after the readout takes the frames of the layer it
// names: its input width, the layer (every shard of it) as its source; its
// own keys land in its options; misplaced or misnamed ones are refused.
START_TEST(test_tap_stage) {
  char text[1024];
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap, layer: l2, rows: all}\n", s_min);
  ffs_topo_t t;
  const char *ov = "l2.shards=2";
  ck_assert_msg(s_load(&t, text, &ov, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.n_stages, 6);
  ck_assert_int_eq(t.readout, 4);
  ck_assert_str_eq(ffs_stage_kind_str(t.stages[5].kind), "tap");
  ck_assert_int_eq(t.stages[5].in_from, 2); // l2.0, the group of l2
  ck_assert_int_eq(t.stages[5].in_dim, 10);
  ck_assert_int_eq(t.stages[2].in_from, 1); // l2.0 takes l1's frames, as l2.1 does
  ck_assert_int_eq(t.stages[3].in_from, 1);
  ck_assert_int_eq(ffs_topo_next(&t, 2), 4); // the chain goes on to the readout
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap}\n", s_min);
  s_expect_fail_at(text, 11, "stage 't2': missing required key 'layer'");
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap, layer: out}\n", s_min);
  s_expect_fail_at(text, 11, "stage 't2': layer: not an ff_layer: 'out'");
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap, layer: l9}\n", s_min);
  s_expect_fail_at(text, 11, "stage 't2': layer: no stage named 'l9'");
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap, layer: l1, rows: some}\n", s_min);
  s_expect_fail_at(text, 11, "stage 't2': rows: expected one of neutral, all");
  snprintf(text, sizeof text, "%s  - {name: t2, kind: tap, layer: l1, units: 5}\n", s_min);
  s_expect_fail_at(text, 11, "stage 't2': key 'units' does not apply to a tap");
  const char *before = "stages:\n"
                       "  - {name: src, kind: source}\n"
                       "  - {name: l1, kind: ff_layer, units: 5}\n"
                       "  - {name: t1, kind: tap, layer: l1}\n"
                       "  - {name: out, kind: readout}\n";
  s_expect_fail_at(before, 4, "stage 't1': a tap before the readout");
}
END_TEST

// What one kind needs of another's configuration is resolved at load: the
// readout's index, whether it wants neutral and candidate rows, which
// layers (every shard of them) report their activity for its softmax.
START_TEST(test_resolved_facts) {
  ffs_topo_t t;
  const char *ov[] = {"l1.shards=2", "out.softmax=[l1]", "out.energy=[l2]"};
  ck_assert_msg(s_load(&t, s_min, ov, 3) == 0, "%s", s_err);
  ck_assert_int_eq(t.n_stages, 5);
  ck_assert_int_eq(t.readout, 4);
  ck_assert_int_eq(t.want_neutral, 1);
  ck_assert_int_eq(t.want_candidates, 1);
  ck_assert_int_eq(t.stages[1].report_activity, 1); // l1.0
  ck_assert_int_eq(t.stages[2].report_activity, 1); // l1.1
  ck_assert_int_eq(t.stages[3].report_activity, 0); // l2: energy only
  const char *ov2[] = {"out.energy=[]", "out.primary=softmax"};
  ck_assert_msg(s_load(&t, s_min, ov2, 2) == 0, "%s", s_err);
  ck_assert_int_eq(t.want_candidates, 0);
  ck_assert_int_eq(t.readout, 3);
}
END_TEST

static const char *s_fb_head = "stages:\n"                                  // 1
                               "  - {name: src, kind: source}\n"            // 2
                               "  - {name: l1, kind: ff_layer, units: 5}\n" // 3
                               "  - {name: l2, kind: ff_layer, units: 5}\n" // 4
                               "  - {name: out, kind: readout}\n"           // 5
                               "feedback:\n"                                // 6
                               "  - {from: l2, to: l1}\n";                  // 7

START_TEST(test_err_feedback) {
  char text[1024];
  snprintf(text, sizeof text, "%s  - from: l1\n    to: l2\n", s_fb_head);
  s_expect_fail_at(text, 8, "feedback l1 -> l2: 'from' must be a later stage than 'to'");
  snprintf(text, sizeof text, "%s  - from: l2\n    to: l0\n", s_fb_head);
  s_expect_fail_at(text, 9,
                   "feedback 2: to: no stage named 'l0' (expected one of: src, l1, l2, out)");
  snprintf(text, sizeof text, "%s  - {from: l2, to: l1}\n", s_fb_head);
  s_expect_fail_at(text, 8, "feedback l2 -> l1: duplicate edge (first at line 7)");
  snprintf(text, sizeof text, "%s  - {from: l2}\n", s_fb_head);
  s_expect_fail_at(text, 8, "feedback 2: missing required key 'to'");
  snprintf(text, sizeof text, "%s  - {from: l2, to: l1, via: x}\n", s_fb_head);
  s_expect_fail_at(text, 8, "feedback 2: unknown key 'via' (expected one of: from, to)");
  snprintf(text, sizeof text, "%s  - {from: out, to: out}\n", s_fb_head);
  s_expect_fail_at(text, 8, "'from' must be a later stage");
}
END_TEST

START_TEST(test_err_hard_negatives_need_the_edge) {
  // s_min has 10 lines; train: starts at line 11, negatives at line 12
  char text[1024];
  snprintf(text, sizeof text, "%strain:\n  negatives: hard\n", s_min);
  s_expect_fail_at(text, 12, "train.negatives: hard needs a feedback edge from the readout to the "
                             "source (expected feedback: - {from: out, to: src})");
  ffs_topo_t t;
  snprintf(text, sizeof text, "%strain:\n  negatives: hard\nfeedback:\n  - {from: out, to: src}\n",
           s_min);
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.negatives, FFS_NEG_HARD);
}
END_TEST

START_TEST(test_err_shards) {
  char text[1024];
  s_expect_set_fail("l2.shards=11", "stage 'l2': shards: 11 shards of 10 units leave a shard "
                                    "without units (expected at most 10)");
  s_expect_set_fail("l2.shards=17", "stage 'l2': shards");
  // s_min has 10 lines; feedback: starts at line 11
  snprintf(text, sizeof text, "%sfeedback:\n  - {from: l2, to: l1}\n", s_min);
  ffs_topo_t t;
  const char *ov = "l1.shards=2";
  ck_assert_int_eq(s_load(&t, text, &ov, 1), -1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/t.yaml:12: ", s_dir);
  s_expect_err(prefix, "feedback l2 -> l1: 'l1' is sharded (shards: 2) and a sharded layer "
                       "cannot start or end a feedback edge yet");
  snprintf(text, sizeof text, "%strain:\n  labels: separate\n", s_min);
  ck_assert_int_eq(s_load(&t, text, &ov, 1), -1);
  s_expect_err("--set l1.shards=2: ", "stage 'l1': shards: a layer cannot be sharded in the "
                                      "FFCL form");
}
END_TEST

START_TEST(test_err_labels_and_recurrent) {
  char text[1024];
  // s_min has 10 lines; train: starts at line 11
  snprintf(text, sizeof text, "%strain:\n  ticks: 4\n", s_min);
  s_expect_fail_at(text, 12, "train.ticks: 4 ticks need at least one top-down feedback edge "
                             "between ff_layers");
  snprintf(text, sizeof text, "%strain:\n  ticks: 4\nfeedback:\n  - {from: out, to: l1}\n", s_min);
  s_expect_fail_at(text, 14, "feedback out -> l1: with train.ticks > 1 an ff_layer's feedback "
                             "is its top-down input, so it must come from an ff_layer");
  snprintf(text, sizeof text,
           "%strain:\n  labels: separate\n  ticks: 4\nfeedback:\n  - {from: l2, to: l1}\n", s_min);
  s_expect_fail_at(text, 13, "train.ticks: the recurrent form (ticks > 1) is not implemented "
                             "together with labels: separate");
  snprintf(text, sizeof text, "%strain:\n  labels: separate\n  negatives: hybrid\n", s_min);
  s_expect_fail_at(text, 12, "train.labels: separate gives each layer the label, but hybrid "
                             "negatives are unsupervised");
  snprintf(text, sizeof text, "%strain:\n  ticks: 4\n  score_ticks: [2, 1]\n", s_min);
  s_expect_fail_at(text, 13, "train.score_ticks[1]");
  snprintf(text, sizeof text, "%strain:\n  ticks: 4\n  score_ticks: [0, 4]\n", s_min);
  s_expect_fail_at(text, 13, "train.score_ticks[1]");
  snprintf(text, sizeof text, "%strain:\n  score_ticks: 3\n", s_min);
  s_expect_fail_at(text, 12, "train.score_ticks: expected [first, last]");
  snprintf(text, sizeof text, "%strain:\n  damping: 1.5\n", s_min);
  s_expect_fail_at(text, 12, "train.damping: 1.5 is above 1");
  snprintf(text, sizeof text,
           "%strain:\n  ticks: 4\n  hwm_frames: 9\nfeedback:\n  - {from: l2, to: l1}\n", s_min);
  s_expect_fail_at(text, 13, "train.hwm_frames: 9 is too deep for a lockstep recurrent run");
  snprintf(text, sizeof text,
           "%strain:\n  ticks: 4\n  pairs: true\nfeedback:\n  - {from: l2, to: l1}\n", s_min);
  s_expect_fail_at(text, 13, "train.pairs: the recurrent form (ticks > 1) sends positive and "
                             "negative frames tick by tick");
  snprintf(text, sizeof text,
           "%strain:\n  ticks: 4\n  triples: true\nfeedback:\n  - {from: l2, to: l1}\n", s_min);
  s_expect_fail_at(text, 13, "train.triples: the recurrent form (ticks > 1) sends positive and "
                             "negative frames tick by tick, never as one triple frame");
  snprintf(text, sizeof text, "%strain:\n  timing: sometimes\n", s_min);
  s_expect_fail_at(text, 12, "train.timing");
  s_expect_set_fail("l1.delay_ms=-1", "l1");
}
END_TEST

START_TEST(test_err_hosts) {
  const char *stages = "stages:\n  - {name: src, kind: source}\n"
                       "  - {name: l1, kind: ff_layer, units: 1, host: c}\n"
                       "  - {name: out, kind: readout}\n";
  char text[1024];
  snprintf(text, sizeof text, "hosts:\n  - {name: a, address: 10.0.0.1}\n%s", stages);
  s_expect_fail_at(text, 5, "stage 'l1': host: no host named 'c' in hosts: (expected one of: a)");
  s_expect_fail_at(stages, 3, "no host named 'c' in hosts: (expected one of: none; add a hosts:");
  s_expect_fail_at("hosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: a, address: x}\n",
                   3, "hosts[1]: duplicate host name 'a' (first at");
  s_expect_fail_at("hosts:\n  - {name: a, address: 'tcp://10.0.0.1:5'}\n", 2,
                   "hosts[0]: address: 'tcp://10.0.0.1:5' is not a host name or IPv4 address");
  s_expect_fail_at("hosts:\n  - {name: a}\n", 2, "hosts[0]: missing required key 'address'");
  s_expect_fail_at("hosts: {a: 1}\n", 1, "hosts: expected a sequence of {name, address}");
  s_expect_fail_at("tcp: {ports: [7000, 6000]}\n", 1, "tcp.ports: LAST");
  s_expect_fail_at("tcp: {ports: 7000}\n", 1, "tcp.ports: expected [FIRST, LAST]");
  s_expect_fail_at("launch: {launcher: pbs}\n", 1, "launch.launcher");
  s_expect_fail_at("launch: {ssh: 'ssh {host}'}\n", 1, "launch.ssh: 'ssh {host}' has no {cmd}");
  s_expect_fail_at("launch: {silent_s: 0}\n", 1, "launch.silent_s");
  s_expect_fail_at("security: {curve: maybe}\n", 1, "security.curve");
}
END_TEST

START_TEST(test_err_yaml_syntax) {
  s_expect_fail_at("name: x\n"
                   "train:\n"
                   "  epochs: [1, 2\n"
                   "  batch: 3\n"
                   "stages: []\n",
                   4, "YAML syntax error");
  s_expect_fail_at("a: b\n  c: d\n", 2, "YAML syntax error: mapping values are not allowed");
  s_expect_fail_at("train: {epochs: 1}\n---\nseed: 2\n", 2, "a second YAML document");
}
END_TEST

START_TEST(test_err_anchor_alias) {
  s_expect_fail_at("layer: &base\n  lr: 0.1\n", 1, "anchors and aliases are not supported");
  s_expect_fail_at("train:\n  epochs: 1\n  batch: *x\n", 3,
                   "anchors and aliases are not supported");
  s_expect_fail_at("seed: !!int 3\n", 1, "YAML tags are not supported");
}
END_TEST

START_TEST(test_err_empty_and_top_level) {
  s_expect_fail_at("", 1, "empty topology file");
  s_expect_fail_at("# only a comment\n\n", 1, "empty topology file");
  s_expect_fail_at("\n- a\n- b\n", 2, "top level: expected a mapping of keys");
  s_expect_fail_at("just a scalar\n", 1, "top level: expected a mapping of keys");
}
END_TEST

START_TEST(test_err_files) {
  ffs_topo_t t;
  char path[256];
  snprintf(path, sizeof path, "%s/missing.yaml", s_dir);
  ck_assert_int_eq(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err), -1);
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s: ", path);
  s_expect_err(prefix, "cannot open");
  ck_assert_int_eq(ffs_topo_load(&t, s_dir, NULL, 0, s_err, sizeof s_err), -1);
  ck_assert_msg(strstr(s_err, "cannot read") != NULL, "%s", s_err);
  // the error buffer may be tiny: still terminated
  char tiny[8];
  ck_assert_int_eq(ffs_topo_load(&t, path, NULL, 0, tiny, sizeof tiny), -1);
  ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
}
END_TEST

// ---- errors: hostile input is refused cleanly ----

START_TEST(test_hostile_deep_nesting) {
  size_t n = 1000000;
  char *text = malloc(n + 1);
  ck_assert_ptr_nonnull(text);
  memset(text, '[', n);
  text[n] = 0;
  ffs_topo_t t;
  ck_assert_int_eq(s_load(&t, text, NULL, 0), -1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/t.yaml:1: ", s_dir);
  s_expect_err(prefix, "nested deeper than");
  // block nesting, one level a line
  size_t at = 0;
  for (int i = 0; i < 40; i++) at += (size_t)sprintf(text + at, "%*sk%d:\n", i, "", i);
  ck_assert_int_eq(s_load(&t, text, NULL, 0), -1);
  s_expect_err(s_dir, "nested deeper than");
  free(text);
}
END_TEST

START_TEST(test_hostile_size_and_count) {
  size_t n = (1 << 20) + 10;
  char *text = malloc(n + 1);
  ck_assert_ptr_nonnull(text);
  memset(text, ' ', n);
  text[n] = 0;
  ffs_topo_t t;
  ck_assert_int_eq(s_load(&t, text, NULL, 0), -1);
  s_expect_err(s_dir, "larger than 1024 KiB");
  // many small nodes: a flow sequence of 200000 items
  size_t at = (size_t)sprintf(text, "seed: [");
  while (at < 900000) at += (size_t)sprintf(text + at, "1,");
  sprintf(text + at, "1]\n");
  ck_assert_int_eq(s_load(&t, text, NULL, 0), -1);
  s_expect_err(s_dir, "more than 10000 YAML nodes");
  free(text);
}
END_TEST

START_TEST(test_hostile_junk) {
  // binary junk from a fixed LCG, several seeds: always a clean one-line error
  char buf[4096];
  unsigned x = 12345;
  for (int round = 0; round < 50; round++) {
    for (size_t i = 0; i < sizeof buf; i++) {
      x = x * 1103515245u + 12345u;
      buf[i] = (char)(x >> 16);
    }
    const char *path = s_write_n("junk.yaml", buf, round == 0 ? 1 : sizeof buf);
    ffs_topo_t t;
    s_err[0] = 0;
    ck_assert_int_eq(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err), -1);
    ck_assert(strlen(s_err) > 0);
    ck_assert_msg(!strchr(s_err, '\n'), "not one line: %s", s_err);
  }
  // an override with a newline in its key or value still gives one line
  const char *ov[] = {"l1\n.units=5", "l1.lr=\"a\nb\""};
  for (int i = 0; i < 2; i++) {
    ffs_topo_t t;
    ck_assert_int_eq(s_load(&t, s_min, ov + i, 1), -1);
    ck_assert_msg(!strchr(s_err, '\n'), "not one line: %s", s_err);
  }
  // a NUL byte inside a document
  const char nul[] = "seed: 1\nname: a\0b\n";
  const char *path = s_write_n("nul.yaml", nul, sizeof nul - 1);
  ffs_topo_t t;
  ck_assert_int_eq(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err), -1);
  ck_assert_msg(!strchr(s_err, '\n'), "not one line: %s", s_err);
  // a quoted escape that makes a NUL and a multi-line value quoted in a message
  s_expect_fail_at("name: \"a\\0b\"\n", 1, "NUL");
  s_expect_fail_at("name: \"a\\nb\"\n", 1, "name: expected 1..31 characters");
}
END_TEST

START_TEST(test_err_data_classes) {
  s_expect_set_fail("data.classes=1", "data.classes: expected an integer in 2..255, got '1'");
  s_expect_set_fail("data.classes=256", "data.classes: expected an integer in 2..255, got '256'");
  s_expect_set_fail("data.classes=ten", "data.classes: expected an integer in 2..255");
  s_expect_set_fail("data.classes=[10]", "data.classes: expected an integer in 2..255");
  char text[512];
  snprintf(text, sizeof text, "data:\n  classes: 0\n%s", s_min);
  s_expect_fail_at(text, 2, "data.classes: expected an integer in 2..255, got '0'");
  // the overlay paints data.classes pixels: data.dim must hold them
  snprintf(text, sizeof text, "data:\n  dim: 9\n%s", s_min);
  s_expect_fail_at(text, 2, "data.dim: 9 pixels cannot hold the label overlay of data.classes "
                            "= 10 labels (expected data.dim >= data.classes");
  snprintf(text, sizeof text, "data:\n  dim: 100\n  classes: 101\n%s", s_min);
  s_expect_fail_at(text, 2, "cannot hold the label overlay of data.classes = 101 labels");
  const char *ov = "data.classes=200";
  ffs_topo_t t;
  snprintf(text, sizeof text, "data:\n  dim: 100\n%s", s_min);
  ck_assert_int_eq(s_load(&t, text, &ov, 1), -1);
  s_expect_err(s_dir, "t.yaml:2: data.dim: 100 pixels cannot hold");
  snprintf(text, sizeof text, "data:\n  set: mnist\n%s", s_min);
  const char *ov2[] = {"data.dim=50", "data.classes=60"};
  ck_assert_int_eq(s_load(&t, text, ov2, 2), -1);
  s_expect_err("--set data.dim=50: ",
               "50 pixels cannot hold the label overlay of data.classes = 60");
}
END_TEST

// ---- streams: a source's feed keys ----

#define S_CHAIN "  - {name: l1, kind: ff_layer, units: 5}\n  - {name: out, kind: readout}\n"

START_TEST(test_err_stream_feeds) {
  // a live feed is played once: it needs train.mode: stream
  s_expect_fail_at("stages:\n  - {name: src, kind: source, feed: udp, bind: \"udp://127.0.0.1:9\","
                   " columns: 3}\n" S_CHAIN,
                   2, "source 'src': a live feed is played once as it comes (expected train.mode: "
                      "stream)");
  s_expect_fail_at("train: {mode: stream, negatives: hard}\nstages:\n"
                   "  - {name: src, kind: source}\n" S_CHAIN,
                   1, "train.negatives: hard draws a sample's negative from its prediction");
  s_expect_fail_at("train: {mode: river}\nstages:\n  - {name: src, kind: source}\n" S_CHAIN, 1,
                   "train.mode");
  // each feed's own keys, named when missing or misplaced
  s_expect_fail_at("train: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: y4m, input: a.y4m}\n" S_CHAIN,
                   3, "stage 'src': feed y4m needs width and height");
  s_expect_fail_at("train: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: y4m, width: 2, height: 2}\n" S_CHAIN,
                   3, "reads one of input (a file, or - for standard input) or command");
  s_expect_fail_at("train: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: zmq, bind: \"tcp://127.0.0.1:5601\","
                   " columns: 4}\n" S_CHAIN,
                   3, "stage 'src': key 'columns' does not apply to feed: zmq");
  s_expect_fail_at("train: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: udp, bind: \"udp://localhost:x\","
                   " columns: 4}\n" S_CHAIN,
                   3, "bind: 'udp://localhost:x' is not udp://IPV4:PORT");
  s_expect_fail_at("train: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: csv, input: -, columns: 4,"
                   " label_column: 4}\n" S_CHAIN,
                   3, "label_column");
  // the feed's shape and data.dim must agree
  s_expect_fail_at("data: {dim: 100}\ntrain: {mode: stream}\nstages:\n"
                   "  - {name: src, kind: source, feed: y4m, input: -, width: 28, height: 28}\n"
                   S_CHAIN,
                   1, "data.dim: 100, but source 'src' makes rows of 784 floats");
  // a good one: the shape gives the row width
  ffs_topo_t t;
  ck_assert_int_eq(s_load(&t, "train: {mode: stream}\nstages:\n  - {name: src, kind: source, "
                              "feed: csv, input: -, columns: 5, label_column: 4, window: 3}\n"
                              S_CHAIN, NULL, 0), 0);
  ck_assert_int_eq(t.stages[0].out_dim, 12);
  ck_assert_int_eq(t.stream, 1);
  ck_assert_int_eq(t.epochs, 1);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("topo_errors");
  TCase *errors = tcase_create("errors");
  tcase_add_checked_fixture(errors, s_setup, s_teardown);
  tcase_set_timeout(errors, 60);
  tcase_add_test(errors, test_err_unknown_key);
  tcase_add_test(errors, test_err_key_of_other_kind);
  tcase_add_test(errors, test_err_wrong_type);
  tcase_add_test(errors, test_err_duplicate_key);
  tcase_add_test(errors, test_err_duplicate_stage);
  tcase_add_test(errors, test_err_stage_names);
  tcase_add_test(errors, test_err_unknown_kind);
  tcase_add_test(errors, test_err_missing_units);
  tcase_add_test(errors, test_err_source_not_first);
  tcase_add_test(errors, test_err_readouts);
  tcase_add_test(errors, test_err_stage_count);
  tcase_add_test(errors, test_err_energy_list);
  tcase_add_test(errors, test_resolved_facts);
  tcase_add_test(errors, test_tap_stage);
  tcase_add_test(errors, test_edges);
  tcase_add_test(errors, test_dualprop_chain);
  tcase_add_test(errors, test_err_dualprop);
  tcase_add_test(errors, test_mirror_twins);
  tcase_add_test(errors, test_err_mirror);
  tcase_add_test(errors, test_err_feedback);
  tcase_add_test(errors, test_err_hard_negatives_need_the_edge);
  tcase_add_test(errors, test_err_labels_and_recurrent);
  tcase_add_test(errors, test_err_shards);
  tcase_add_test(errors, test_err_hosts);
  tcase_add_test(errors, test_err_data_classes);
  tcase_add_test(errors, test_err_yaml_syntax);
  tcase_add_test(errors, test_err_anchor_alias);
  tcase_add_test(errors, test_err_empty_and_top_level);
  tcase_add_test(errors, test_err_files);
  tcase_add_test(errors, test_hostile_deep_nesting);
  tcase_add_test(errors, test_hostile_size_and_count);
  tcase_add_test(errors, test_hostile_junk);
  tcase_add_test(errors, test_err_stream_feeds);
  suite_add_tcase(s, errors);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
