// check_topo: the topology loader (common/ffs_topo.c). Loads the shipped
// configs, checks defaults, per-stage and --set overrides, endpoints; every
// kind of bad file is in check_topo_errors.c.
// Each test writes its YAML into a fresh temp folder under /tmp.
#include "t_topo_util.h"

#include <math.h>
#include <unistd.h>

// A shipped config: $FFS_SOURCE_DIR, else the compile-time FFS_SOURCE_DIR,
// else ../configs (run from a build dir) or configs (run from the root).
static void s_config_path(char *out, size_t cap, const char *name) {
  const char *src = getenv("FFS_SOURCE_DIR");
#ifdef FFS_SOURCE_DIR
  if (!src) src = FFS_SOURCE_DIR;
#endif
  if (src) {
    snprintf(out, cap, "%s/configs/%s", src, name);
    return;
  }
  snprintf(out, cap, "../configs/%s", name);
  if (access(out, R_OK) != 0) snprintf(out, cap, "configs/%s", name);
}

// ---- core ----

START_TEST(test_mnist_config) {
  char path[512];
  ffs_topo_t t;
  s_config_path(path, sizeof path, "mnist-ff.yaml");
  ck_assert_msg(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
  ck_assert_str_eq(t.path, path);
  ck_assert_str_eq(t.name, "mnist-ff");
  ck_assert_str_eq(t.data_set, "mnist");
  ck_assert_str_eq(t.data_dir, "data/mnist");
  ck_assert_int_eq(t.transport, FFS_TRANSPORT_IPC);
  ck_assert_int_eq(t.batch, 100);
  ck_assert_int_eq(t.n_stages, 5);
  const char *names[] = {"src", "l1", "l2", "l3", "out"};
  const ffs_stage_kind_t kinds[] = {FFS_STAGE_SOURCE, FFS_STAGE_FF_LAYER, FFS_STAGE_FF_LAYER,
                                    FFS_STAGE_FF_LAYER, FFS_STAGE_READOUT};
  const int in_dim[] = {0, 784, 500, 500, 0}, out_dim[] = {784, 500, 500, 500, 0};
  for (int i = 0; i < 5; i++) {
    ck_assert_str_eq(t.stages[i].name, names[i]);
    ck_assert_int_eq(t.stages[i].kind, kinds[i]);
    ck_assert_int_eq(t.stages[i].in_dim, in_dim[i]);
    ck_assert_int_eq(t.stages[i].out_dim, out_dim[i]);
    ck_assert_int_gt(t.stages[i].line, 0);
    ck_assert_int_eq(ffs_topo_find(&t, names[i]), i);
  }
  const ffs_stage_cfg_t *out = &t.stages[4];
  ck_assert_int_eq(out->n_energy, 2);
  ck_assert_int_eq(out->energy[0], 2);
  ck_assert_int_eq(out->energy[1], 3);
  ck_assert_int_eq(out->n_softmax, 2);
  ck_assert_int_eq(out->softmax[0], 2);
  ck_assert_int_eq(out->softmax[1], 3);
  ck_assert_int_eq(out->primary, FFS_INFER_ENERGY);
  ck_assert_int_eq(t.n_feedback, 2);
  ck_assert_int_eq(t.feedback[0].from, 2);
  ck_assert_int_eq(t.feedback[0].to, 1);
  ck_assert_int_gt(t.feedback[0].line, t.stages[4].line);
  ck_assert_int_eq(t.feedback[1].from, 4); // readout predictions -> source
  ck_assert_int_eq(t.feedback[1].to, 0);
  ck_assert_int_eq(t.negatives, FFS_NEG_HARD);
  ck_assert_float_eq_tol(t.stages[1].layer.lr, 0.01f, 1e-7f);
  ck_assert_int_eq(t.stages[1].layer.goodness, FFS_GOODNESS_SSQ);
}
END_TEST

START_TEST(test_fashion_config) {
  char path[512];
  ffs_topo_t t;
  s_config_path(path, sizeof path, "fashion-ff.yaml");
  ck_assert_msg(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
  ck_assert_str_eq(t.name, "fashion-ff");
  ck_assert_str_eq(t.data_set, "fashion");
  ck_assert_str_eq(t.data_dir, "data/fashion");
  ck_assert_int_eq(t.n_stages, 5);
  ck_assert_int_eq(t.stages[0].out_dim, 784);
}
END_TEST

// The dual-propagation configs and their backprop twins: the same network,
// 784-1000x4-10, dp_layers only, lockstep, the readout scoring the top.
START_TEST(test_dualprop_configs) {
  static const char *const files[] = {"mnist-dualprop.yaml", "mnist-backprop.yaml",
                                      "fashion-dualprop.yaml", "fashion-backprop.yaml"};
  for (int k = 0; k < 4; k++) {
    char path[512];
    ffs_topo_t t;
    s_config_path(path, sizeof path, files[k]);
    ck_assert_msg(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
    ck_assert_int_eq(t.n_stages, 7);
    ck_assert_int_eq(t.supervised, 1);
    ck_assert_int_eq(t.timing, FFS_TIMING_LOCKSTEP);
    ck_assert_int_eq(t.epochs, 30);
    ck_assert_int_eq(t.batch, 100);
    ck_assert_int_eq(t.stages[1].in_dim, 784);
    ck_assert_int_eq(t.stages[5].in_dim, 1000);
    ck_assert_int_eq(t.stages[5].units, 10);
    ck_assert_int_eq(t.stages[1].layer.opt, FFS_OPT_ADAM);
    ck_assert_str_eq(t.stages[1].name, "l1");
    ck_assert_str_eq(t.data_set, k < 2 ? "mnist" : "fashion");
  }
}
END_TEST

START_TEST(test_defaults) {
  ffs_topo_t t;
  const char *text = "# a comment first\n"
                     "stages:\n"                                  // 2
                     "  - {name: src, kind: source}\n"            // 3
                     "  - {name: l1, kind: ff_layer, units: 7}\n" // 4
                     "  - name: out\n"                            // 5
                     "    kind: readout\n";
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_str_eq(t.name, "t"); // the file stem
  ck_assert_uint_eq(t.seed, 1);
  ck_assert_int_eq(t.transport, FFS_TRANSPORT_IPC);
  ck_assert_str_eq(t.tcp_host, "127.0.0.1");
  ck_assert_int_eq(t.tcp_port_lo, 0); // any free port
  ck_assert_int_eq(t.tcp_port_hi, 0);
  ck_assert_int_eq(t.n_hosts, 0);
  ck_assert_int_eq(t.launcher, FFS_LAUNCHER_LOCAL);
  ck_assert_int_eq(t.silent_s, 5);
  ck_assert_int_eq(t.ctl_port, 0);
  ck_assert_int_eq(t.curve, 1);
  ck_assert_str_eq(t.keys_dir, "");
  ck_assert_str_eq(t.ssh_cmd, "ssh -o BatchMode=yes {host} {cmd}");
  ck_assert_str_eq(t.data_set, "mnist");
  ck_assert_str_eq(t.data_dir, "data/mnist");
  ck_assert_int_eq(t.train_limit, 0);
  ck_assert_int_eq(t.test_limit, 0);
  ck_assert_int_eq(t.epochs, 10);
  ck_assert_int_eq(t.batch, 100);
  ck_assert_int_eq(t.eval_batch, 100);
  ck_assert_int_eq(t.eval_every, 1);
  ck_assert_int_eq(t.negatives, FFS_NEG_RANDOM);
  ck_assert_int_eq(t.hwm_frames, 4);
  const ffs_layer_cfg_t *l = &t.stages[1].layer;
  ck_assert_int_eq(l->goodness, FFS_GOODNESS_SSQ);
  ck_assert_float_eq(l->theta, 0.0f);
  ck_assert_float_eq(l->temp, 1.0f);
  ck_assert_int_eq(l->opt, FFS_OPT_SGD);
  ck_assert_float_eq(l->lr, 0.01f);
  ck_assert_float_eq(l->momentum, 0.9f);
  ck_assert_float_eq(l->weight_decay, 0.001f);
  ck_assert_int_eq(l->cooldown, 1);
  ck_assert_float_eq(l->peer_lambda, 0.03f);
  ck_assert_float_eq(l->peer_decay, 0.9f);
  ck_assert_float_eq(l->eval_average, 0.0f);
  ck_assert_int_eq(t.stages[0].out_dim, 784);
  ck_assert_int_eq(t.stages[1].in_dim, 784);
  ck_assert_int_eq(t.stages[1].out_dim, 7);
  ck_assert_int_eq(t.stages[1].units, 7);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(t.stages[i].core, -1);
  ck_assert_int_eq(t.stages[0].line, 3);
  ck_assert_int_eq(t.stages[1].line, 4);
  ck_assert_int_eq(t.stages[2].line, 5);
  // a single ff_layer: the readout uses it for both inferences
  ck_assert_int_eq(t.stages[2].n_energy, 1);
  ck_assert_int_eq(t.stages[2].energy[0], 1);
  ck_assert_int_eq(t.stages[2].n_softmax, 1);
  ck_assert_float_eq(t.stages[2].softmax_lr, 0.01f);
  ck_assert_int_eq(t.stages[2].primary, FFS_INFER_ENERGY);
  ck_assert_int_eq(t.n_feedback, 0);
}
END_TEST

START_TEST(test_readout_default_lists) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  // two ff_layers: all but the first
  ck_assert_int_eq(t.stages[3].n_energy, 1);
  ck_assert_int_eq(t.stages[3].energy[0], 2);
  ck_assert_int_eq(t.stages[3].n_softmax, 1);
  ck_assert_int_eq(t.stages[3].softmax[0], 2);
  ck_assert_int_eq(t.stages[2].in_dim, 20);
}
END_TEST

START_TEST(test_all_keys) {
  ffs_topo_t t;
  const char *text = "name: full.run\n"
                     "seed: 18446744073709551615\n"
                     "transport: tcp\n"
                     "tcp: {host: 10.0.0.2, ports: [6000, 6100]}\n"
                     "hosts:\n"
                     "  - {name: a, address: 10.0.0.1}\n"
                     "  - {name: b, address: node-2.cluster}\n"
                     "launch: {launcher: ssh, ssh: 'ip netns exec {host} {cmd}', srun: 'srun -O', "
                     "mpirun: 'mpirun --oversubscribe', silent_s: 7, port: 5999}\n"
                     "security: {curve: false, keys: /etc/ffs}\n"
                     "data:\n"
                     "  set: fashion\n"
                     "  dim: 100\n"
                     "  train_limit: 1000\n"
                     "  test_limit: 500\n"
                     "train: {epochs: 2, batch: 50, eval_batch: 10, eval_every: 2, "
                     "negatives: random, hwm_frames: 8}\n"
                     "layer:\n"
                     "  goodness: min_ssq\n"
                     "  theta: 2.5\n"
                     "  temp: 0.5\n"
                     "  optimizer: adam\n"
                     "  lr: 1e-3\n"
                     "  momentum: 0\n"
                     "  weight_decay: 0\n"
                     "  cooldown: false\n"
                     "  peer_lambda: 0\n"
                     "  peer_decay: 0.5\n"
                     "  eval_average: 0.99\n"
                     "stages:\n"
                     "  - {name: src, kind: source, core: 0}\n"
                     "  - {name: l1, kind: ff_layer, units: 30, core: 2, host: b}\n"
                     "  - {name: l2, kind: ff_layer, units: 40}\n"
                     "  - {name: out, kind: readout, energy: [l1], softmax: [l2, l1], "
                     "softmax_lr: 0.5, primary: softmax}\n"
                     "feedback:\n"
                     "  - {from: out, to: l1}\n"
                     "  - {from: l2, to: src}\n";
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_str_eq(t.name, "full.run");
  ck_assert(t.seed == UINT64_MAX);
  ck_assert_int_eq(t.transport, FFS_TRANSPORT_TCP);
  ck_assert_str_eq(t.tcp_host, "10.0.0.2");
  ck_assert_int_eq(t.tcp_port_lo, 6000);
  ck_assert_int_eq(t.tcp_port_hi, 6100);
  ck_assert_int_eq(t.n_hosts, 2);
  ck_assert_str_eq(t.hosts[1].name, "b");
  ck_assert_str_eq(t.hosts[1].address, "node-2.cluster");
  ck_assert_int_eq(t.stages[0].host, 0);
  ck_assert_int_eq(t.stages[1].host, 1);
  ck_assert_int_eq(t.launcher, FFS_LAUNCHER_SSH);
  ck_assert_str_eq(t.ssh_cmd, "ip netns exec {host} {cmd}");
  ck_assert_str_eq(t.srun_cmd, "srun -O");
  ck_assert_str_eq(t.mpirun_cmd, "mpirun --oversubscribe");
  ck_assert_int_eq(t.silent_s, 7);
  ck_assert_int_eq(t.ctl_port, 5999);
  ck_assert_int_eq(t.curve, 0);
  ck_assert_str_eq(t.keys_dir, "/etc/ffs");
  ck_assert_str_eq(t.data_set, "fashion");
  ck_assert_str_eq(t.data_dir, "data/fashion");
  ck_assert_int_eq(t.stages[0].out_dim, 100);
  ck_assert_int_eq(t.stages[1].in_dim, 100);
  ck_assert_int_eq(t.train_limit, 1000);
  ck_assert_int_eq(t.test_limit, 500);
  ck_assert_int_eq(t.epochs, 2);
  ck_assert_int_eq(t.batch, 50);
  ck_assert_int_eq(t.eval_batch, 10);
  ck_assert_int_eq(t.eval_every, 2);
  ck_assert_int_eq(t.hwm_frames, 8);
  const ffs_layer_cfg_t *l = &t.stages[2].layer;
  ck_assert_int_eq(l->goodness, FFS_GOODNESS_MIN_SSQ);
  ck_assert_float_eq(l->theta, 2.5f);
  ck_assert_float_eq(l->temp, 0.5f);
  ck_assert_int_eq(l->opt, FFS_OPT_ADAM);
  ck_assert_float_eq(l->lr, 1e-3f);
  ck_assert_float_eq(l->momentum, 0.0f);
  ck_assert_int_eq(l->cooldown, 0);
  ck_assert_float_eq(l->peer_decay, 0.5f);
  ck_assert_float_eq(l->eval_average, 0.99f);
  ck_assert_int_eq(t.stages[0].core, 0);
  ck_assert_int_eq(t.stages[1].core, 2);
  ck_assert_int_eq(t.stages[2].core, -1);
  const ffs_stage_cfg_t *out = &t.stages[3];
  ck_assert_int_eq(out->n_energy, 1);
  ck_assert_int_eq(out->energy[0], 1);
  ck_assert_int_eq(out->n_softmax, 2);
  ck_assert_int_eq(out->softmax[0], 2);
  ck_assert_int_eq(out->softmax[1], 1);
  ck_assert_float_eq(out->softmax_lr, 0.5f);
  ck_assert_int_eq(out->primary, FFS_INFER_SOFTMAX);
  ck_assert_int_eq(t.n_feedback, 2);
  ck_assert_int_eq(t.feedback[0].from, 3);
  ck_assert_int_eq(t.feedback[0].to, 1);
  ck_assert_int_eq(t.feedback[0].line, 34);
  ck_assert_int_eq(t.feedback[1].from, 2);
  ck_assert_int_eq(t.feedback[1].to, 0);
}
END_TEST

START_TEST(test_stage_overrides_layer_block) {
  ffs_topo_t t;
  const char *text = "layer: {lr: 0.02, theta: 5}\n"
                     "stages:\n"
                     "  - {name: src, kind: source}\n"
                     "  - {name: l1, kind: ff_layer, units: 8}\n"
                     "  - {name: l2, kind: ff_layer, units: 8, lr: 0.05, optimizer: adam, "
                     "cooldown: no}\n"
                     "  - {name: out, kind: readout}\n";
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_float_eq(t.layer.lr, 0.02f);
  ck_assert_float_eq(t.stages[1].layer.lr, 0.02f);
  ck_assert_int_eq(t.stages[1].layer.opt, FFS_OPT_SGD);
  ck_assert_int_eq(t.stages[1].layer.cooldown, 1);
  ck_assert_float_eq(t.stages[2].layer.lr, 0.05f);
  ck_assert_int_eq(t.stages[2].layer.opt, FFS_OPT_ADAM);
  ck_assert_int_eq(t.stages[2].layer.cooldown, 0);
  // keys the stage does not set come from the block, the rest from defaults
  ck_assert_float_eq(t.stages[2].layer.theta, 5.0f);
  ck_assert_float_eq(t.stages[2].layer.momentum, 0.9f);
}
END_TEST

START_TEST(test_set_scalars) {
  ffs_topo_t t;
  const char *ov[] = {"train.epochs=3",        "seed=7",     "layer.lr=0.5",
                      "data.train_limit=1000", "name=quick", "train.epochs=4"};
  ck_assert_msg(s_load(&t, s_min, ov, 6) == 0, "%s", s_err);
  ck_assert_int_eq(t.epochs, 4); // later overrides win
  ck_assert_uint_eq(t.seed, 7);
  ck_assert_float_eq(t.stages[1].layer.lr, 0.5f);
  ck_assert_int_eq(t.train_limit, 1000); // the data block was absent: made
  ck_assert_str_eq(t.name, "quick");
}
END_TEST

START_TEST(test_set_stage_keys) {
  ffs_topo_t t;
  const char *ov[] = {"l1.units=321", "l2.lr=0.05", "layer.lr=0.2"};
  ck_assert_msg(s_load(&t, s_min, ov, 3) == 0, "%s", s_err);
  ck_assert_int_eq(t.stages[1].units, 321);
  ck_assert_int_eq(t.stages[1].out_dim, 321);
  ck_assert_int_eq(t.stages[2].in_dim, 321);
  ck_assert_float_eq(t.stages[1].layer.lr, 0.2f);
  ck_assert_float_eq(t.stages[2].layer.lr, 0.05f); // added key beats the block
}
END_TEST

START_TEST(test_set_list) {
  ffs_topo_t t;
  const char *ov[] = {"out.energy=[l1, l2]", "out.softmax=[l1]", "feedback=[{from: l2, to: l1}]"};
  ck_assert_msg(s_load(&t, s_min, ov, 3) == 0, "%s", s_err);
  ck_assert_int_eq(t.stages[3].n_energy, 2);
  ck_assert_int_eq(t.stages[3].energy[0], 1);
  ck_assert_int_eq(t.stages[3].energy[1], 2);
  ck_assert_int_eq(t.stages[3].n_softmax, 1);
  ck_assert_int_eq(t.stages[3].softmax[0], 1);
  ck_assert_int_eq(t.n_feedback, 1);
  ck_assert_int_eq(t.feedback[0].line, 0);
}
END_TEST

START_TEST(test_set_errors) {
  s_expect_set_fail("l9.units=5", "no stage or top-level block named 'l9'");
  s_expect_set_fail("train.epochs=ten", "train.epochs: expected an integer >= 1, got 'ten'");
  s_expect_set_fail("l1.units=0", "stage 'l1': units: expected an integer in 1..65536, got '0'");
  s_expect_set_fail("out.energy=[src]", "'src' is a source, not an ff_layer");
  s_expect_set_fail("l1.unit=5", "stage 'l1': unknown key 'unit'");
  s_expect_set_fail("train.epochs", "expected KEY=VALUE");
  s_expect_set_fail("=3", "expected KEY=VALUE");
  s_expect_set_fail("a.b.c=3", "expected KEY=VALUE");
  s_expect_set_fail("l 1.units=3", "expected KEY=VALUE");
  s_expect_set_fail("seed.x=3", "'seed' is not a block");
  s_expect_set_fail("l1=3", "a stage is set one key at a time");
  s_expect_set_fail("layer.lr=[0.1", "YAML syntax error");
  s_expect_set_fail("layer.lr=", "layer.lr: expected a number > 0, got nothing");
  s_expect_set_fail("l1.lr=&a 1", "anchors and aliases are not supported");
}
END_TEST

START_TEST(test_set_into_non_mapping_block) {
  ffs_topo_t t;
  const char *text = "train: 5\n"
                     "stages: []\n";
  const char *ov = "train.epochs=3";
  ck_assert_int_eq(s_load(&t, text, &ov, 1), -1);
  s_expect_err("--set train.epochs=3: ", "'train' (line 1) is not a mapping");
}
END_TEST

START_TEST(test_find_and_kind_str) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(ffs_topo_find(&t, "l2"), 2);
  ck_assert_int_eq(ffs_topo_find(&t, "l9"), -1);
  ck_assert_int_eq(ffs_topo_find(&t, ""), -1);
  ck_assert_str_eq(ffs_stage_kind_str(FFS_STAGE_SOURCE), "source");
  ck_assert_str_eq(ffs_stage_kind_str(FFS_STAGE_FF_LAYER), "ff_layer");
  ck_assert_str_eq(ffs_stage_kind_str(FFS_STAGE_READOUT), "readout");
  ck_assert_str_eq(ffs_stage_kind_str((ffs_stage_kind_t)42), "unknown");
}
END_TEST

START_TEST(test_endpoints) {
  ffs_topo_t t;
  char ep[256];
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ffs_topo_endpoint(&t, "/tmp/r1", 1, FFS_CHAN_IN, 0, ep, sizeof ep);
  ck_assert_str_eq(ep, "ipc:///tmp/r1/l1.in");
  ffs_topo_endpoint(&t, "/tmp/r1", 1, FFS_CHAN_FB, 0, ep, sizeof ep);
  ck_assert_str_eq(ep, "ipc:///tmp/r1/l1.fb");
  ffs_topo_endpoint(&t, "/tmp/r1", 3, FFS_CHAN_REP, 2, ep, sizeof ep);
  ck_assert_str_eq(ep, "ipc:///tmp/r1/out.rep2");
  ffs_topo_endpoint(&t, "/tmp/r1", 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  ck_assert_str_eq(ep, "ipc:///tmp/r1/ctl");
  // cut safely when out is short
  char small[12];
  ffs_topo_endpoint(&t, "/tmp/r1", 1, FFS_CHAN_IN, 0, small, sizeof small);
  ck_assert_str_eq(small, "ipc:///tmp/");

  const char *inproc = "transport=inproc";
  ck_assert_msg(s_load(&t, s_min, &inproc, 1) == 0, "%s", s_err);
  ffs_topo_endpoint(&t, "run", 2, FFS_CHAN_IN, 0, ep, sizeof ep);
  ck_assert_str_eq(ep, "inproc://run/l2.in");
  ffs_topo_endpoint(&t, "run", 3, FFS_CHAN_REP, 1, ep, sizeof ep);
  ck_assert_str_eq(ep, "inproc://run/out.rep1");
  ffs_topo_endpoint(&t, "run", 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  ck_assert_str_eq(ep, "inproc://run/ctl");

  // endpoint lists (BOUND, WIRE): a channel may be bound twice
  char list[256] = "";
  ck_assert_int_eq(ffs_eps_add(list, sizeof list, "in", "ipc:///tmp/r/l1.in"), 0);
  ck_assert_int_eq(ffs_eps_add(list, sizeof list, "in", "tcp://10.0.0.2:41234"), 0);
  ck_assert_int_eq(ffs_eps_add(list, sizeof list, "rep3", "tcp://10.0.0.2:41235"), 0);
  ck_assert_str_eq(list, "in=ipc:///tmp/r/l1.in in=tcp://10.0.0.2:41234 rep3=tcp://10.0.0.2:41235");
  ck_assert_int_eq(ffs_eps_get(list, "in", 1, ep, sizeof ep), 0);
  ck_assert_str_eq(ep, "tcp://10.0.0.2:41234");
  ck_assert_int_eq(ffs_eps_get(list, "rep3", 0, ep, sizeof ep), 0);
  ck_assert_str_eq(ep, "tcp://10.0.0.2:41235");
  ck_assert_int_eq(ffs_eps_get(list, "rep", 0, ep, sizeof ep), -1);
  ck_assert_int_eq(ffs_eps_get(list, "in", 2, ep, sizeof ep), -1);
  ck_assert_int_eq(ffs_eps_get(list, "in", 0, ep, 8), -1); // does not fit
  char tiny[20] = "";
  ck_assert_int_eq(ffs_eps_add(tiny, sizeof tiny, "in", "tcp://10.0.0.2:41234"), -1);
  ck_assert_str_eq(tiny, "");
  char why[128];
  ck_assert_int_eq(ffs_eps_check(list, why, sizeof why), 0);
  const char *bad[] = {"in", "=tcp://a:1", "IN=tcp://a:1", "in=http://a:1", "in=tcp://a\x01:1"};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
    ck_assert_msg(ffs_eps_check(bad[k], why, sizeof why) == -1 && why[0], "'%s' passed", bad[k]);
}
END_TEST

START_TEST(test_labels_and_recurrent_keys) {
  ffs_topo_t t;
  char text[1024];
  // defaults: overlay labels, feed-forward
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.labels, FFS_LABELS_OVERLAY);
  ck_assert_int_eq(t.ticks, 1);
  ck_assert_int_eq(t.stages[1].td_dim, 0);
  // recurrent: l2's activity is l1's top-down input; Hinton's scored ticks 3..5 of 8
  snprintf(text, sizeof text,
           "%strain:\n  ticks: 8\n  timing: free-running\nfeedback:\n  - {from: l2, to: l1}\n",
           s_min);
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.ticks, 8);
  ck_assert_int_eq(t.timing, FFS_TIMING_FREE);
  ck_assert_float_eq(t.damping, 0.7f);
  ck_assert_int_eq(t.score_from, 3);
  ck_assert_int_eq(t.score_to, 5);
  ck_assert_int_eq(t.stages[1].td_from, 2);
  ck_assert_int_eq(t.stages[1].td_dim, 10);
  ck_assert_int_eq(t.stages[1].in_dim, 784); // the input from below is unchanged
  ck_assert_int_eq(t.stages[2].td_dim, 0);
  const char *ov[] = {"train.score_ticks=[1, 2]", "train.damping=1", "l1.delay_ms=5"};
  ck_assert_msg(s_load(&t, text, ov, 3) == 0, "%s", s_err);
  ck_assert_int_eq(t.score_from, 1);
  ck_assert_int_eq(t.score_to, 2);
  ck_assert_float_eq(t.damping, 1.0f);
  ck_assert_int_eq(t.stages[1].delay_ms, 5);
  const char *sep = "train.labels=separate";
  ck_assert_msg(s_load(&t, s_min, &sep, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.labels, FFS_LABELS_SEPARATE);
}
END_TEST

START_TEST(test_pace_and_update) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.pace_us, 0); // as fast as the pipeline takes frames
  const char *ov = "train.pace_us=2000";
  ck_assert_msg(s_load(&t, s_min, &ov, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.pace_us, 2000);
  s_expect_set_fail("train.pace_us=-5", "train.pace_us");
  s_expect_set_fail("train.pace_us=2000000", "train.pace_us");
  // layer.update: one optimizer step per frame (default) or per pos+neg pair
  ck_assert_int_eq(t.stages[1].layer.update, FFS_UPDATE_FRAME);
  ov = "layer.update=pair";
  ck_assert_msg(s_load(&t, s_min, &ov, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.stages[2].layer.update, FFS_UPDATE_PAIR);
  s_expect_set_fail("layer.update=batch", "layer.update");
  // train.pairs: positive + negative rows in one frame, twice the batch's rows
  ck_assert_int_eq(t.pairs, 0);
  ck_assert_int_eq(ffs_topo_max_rows(&t), 1000); // 100 samples x 10 candidates
  const char *ovs[] = {"train.pairs=true", "train.batch=600"};
  ck_assert_msg(s_load(&t, s_min, ovs, 2) == 0, "%s", s_err);
  ck_assert_int_eq(t.pairs, 1);
  ck_assert_int_eq(ffs_topo_max_rows(&t), 1200);
  s_expect_set_fail("train.pairs=2", "train.pairs");
  // train.triples: the pair's rows and the neutral rows, three times the
  // batch's rows; it sets pairs, whatever pairs says
  ck_assert_int_eq(t.triples, 0);
  const char *ovt[] = {"train.pairs=false", "train.triples=true", "train.batch=600"};
  ck_assert_msg(s_load(&t, s_min, ovt, 3) == 0, "%s", s_err);
  ck_assert_int_eq(t.triples, 1);
  ck_assert_int_eq(t.pairs, 1);
  ck_assert_int_eq(ffs_topo_max_rows(&t), 1800);
  s_expect_set_fail("train.triples=yes please", "train.triples");
  // shm: large frames through shared memory on ipc, on unless switched off
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.shm, 1);
  ov = "shm=false";
  ck_assert_msg(s_load(&t, s_min, &ov, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.shm, 0);
  s_expect_set_fail("shm=sometimes", "shm");
}
END_TEST

START_TEST(test_shards_expand) {
  ffs_topo_t t;
  const char *ov = "l1.shards=3";
  ck_assert_msg(s_load(&t, s_min, &ov, 1) == 0, "%s", s_err);
  // l1 (20 units) becomes three processes of 7, 7 and 6 units
  ck_assert_int_eq(t.n_stages, 6);
  const char *names[] = {"src", "l1.0", "l1.1", "l1.2", "l2", "out"};
  for (int i = 0; i < 6; i++) ck_assert_str_eq(t.stages[i].name, names[i]);
  const int units[] = {7, 7, 6}, unit0[] = {0, 7, 14};
  for (int k = 0; k < 3; k++) {
    const ffs_stage_cfg_t *st = &t.stages[1 + k];
    ck_assert_int_eq(st->units, units[k]);
    ck_assert_int_eq(st->unit0, unit0[k]);
    ck_assert_int_eq(st->shard, k);
    ck_assert_int_eq(st->n_shards, 3);
    ck_assert_int_eq(st->group, 1);
    ck_assert_int_eq(st->out_dim, 20);
    ck_assert_int_eq(st->in_dim, 784);
    ck_assert_int_eq(st->layer_index, 1);
    ck_assert_str_eq(st->layer_name, "l1");
    ck_assert_int_eq(ffs_topo_next(&t, 1 + k), 4);
  }
  // the next layer sees the whole layer; the readout's list follows l2
  ck_assert_int_eq(t.stages[4].in_dim, 20);
  ck_assert_int_eq(t.stages[4].layer_index, 2);
  ck_assert_int_eq(t.stages[4].group, 4);
  ck_assert_int_eq(t.stages[5].n_energy, 1);
  ck_assert_int_eq(t.stages[5].energy[0], 4);
  ck_assert_int_eq(ffs_topo_find(&t, "l1.2"), 3);
}
END_TEST

// data.classes: the set's own count (10 for mnist and fashion) unless the
// file says otherwise; it sizes the candidate rows, the readout's feedback
// vectors and the overlay.
START_TEST(test_data_classes) {
  ffs_topo_t t;
  ck_assert_msg(s_load(&t, s_min, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.classes, 10);
  const char *fashion = "data.set=fashion";
  ck_assert_msg(s_load(&t, s_min, &fashion, 1) == 0, "%s", s_err);
  ck_assert_int_eq(t.classes, 10);
  char text[512];
  snprintf(text, sizeof text,
           "data:\n  classes: 3\n%sfeedback:\n  - {from: out, to: src}\n", s_min);
  ck_assert_msg(s_load(&t, text, NULL, 0) == 0, "%s", s_err);
  ck_assert_int_eq(t.classes, 3);
  ck_assert_int_eq(ffs_topo_max_rows(&t), 300); // 100 samples x 3 candidates
  ck_assert_int_eq(ffs_topo_feedback_cols(&t, t.n_stages - 1), 3);
  ck_assert_int_eq(ffs_topo_feedback_cols(&t, 1), 20); // a layer's: its units
  const char *ov[] = {"data.classes=255", "data.dim=255"};
  ck_assert_msg(s_load(&t, s_min, ov, 2) == 0, "%s", s_err);
  ck_assert_int_eq(t.classes, 255);
  ck_assert_int_eq(ffs_topo_max_rows(&t), 25500);
  ck_assert_int_eq(t.stages[1].in_dim, 255);
  // FFCL and hybrid negatives paint no label: a narrow row is fine
  const char *ffcl[] = {"data.dim=4", "train.labels=separate"};
  ck_assert_msg(s_load(&t, s_min, ffcl, 2) == 0, "%s", s_err);
  ck_assert_int_eq(t.classes, 10);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("topo");
  TCase *core = tcase_create("core");
  tcase_add_checked_fixture(core, s_setup, s_teardown);
  tcase_add_test(core, test_mnist_config);
  tcase_add_test(core, test_fashion_config);
  tcase_add_test(core, test_dualprop_configs);
  tcase_add_test(core, test_defaults);
  tcase_add_test(core, test_readout_default_lists);
  tcase_add_test(core, test_all_keys);
  tcase_add_test(core, test_stage_overrides_layer_block);
  tcase_add_test(core, test_set_scalars);
  tcase_add_test(core, test_set_stage_keys);
  tcase_add_test(core, test_set_list);
  tcase_add_test(core, test_set_errors);
  tcase_add_test(core, test_set_into_non_mapping_block);
  tcase_add_test(core, test_find_and_kind_str);
  tcase_add_test(core, test_endpoints);
  tcase_add_test(core, test_labels_and_recurrent_keys);
  tcase_add_test(core, test_shards_expand);
  tcase_add_test(core, test_pace_and_update);
  tcase_add_test(core, test_data_classes);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
