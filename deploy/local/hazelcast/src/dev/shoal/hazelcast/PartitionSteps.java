package dev.shoal.hazelcast;

import dev.shoal.hazelcast.PartitionState.Expiring;
import dev.shoal.hazelcast.PartitionState.Kept;
import dev.shoal.hazelcast.PartitionState.MapData;
import dev.shoal.hazelcast.PartitionState.Staged;
import dev.shoal.hazelcast.PartitionState.Status;
import dev.shoal.hazelcast.PartitionState.Write;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Shoal's participant steps on one partition's state: the Java twin of grid/redis/steps.lua,
 * taking the same arguments (after the step's name) and giving the same replies, so
 * grid/hazelcast/partition.py reads them as grid/redis/partition.py reads the script's. Every
 * check runs before the first write: the state is changed in place and is not rolled back.
 */
final class PartitionSteps {
  /** How many answers and decisions a partition remembers for retries, as the memory one. */
  static final int REMEMBERED_MAX = 4096;
  /** Kept states forgotten per step at most: a step must stay short on the partition thread. */
  static final int FORGET_MAX = 512;

  private static final Pattern HOLDER = Pattern.compile("\"([^\"]*)\":\"([^\"]*)\"");

  private final PartitionState state;
  private final Arguments args;
  /** The member's clock when the step began (the same on backups: see PartitionProcessor). */
  private final long nowMs;

  PartitionSteps(PartitionState state, byte[][] arguments, long nowMs) {
    this.state = state;
    this.args = new Arguments(arguments);
    this.nowMs = nowMs;
  }

  /** The step's arguments in order, read as text, numbers or bytes. */
  static final class Arguments {
    private final byte[][] values;
    private int position;

    Arguments(byte[][] values) {
      this.values = values;
    }

    byte[] bytes() {
      return values[position++];
    }

    String text() {
      return new String(bytes(), StandardCharsets.UTF_8);
    }

    boolean more() {
      return position < values.length;
    }

    long number() {
      return Long.parseLong(text());
    }
  }

  static List<Object> reply(Object... items) {
    return new ArrayList<>(Arrays.asList(items));
  }

  List<Object> run(String step) {
    switch (step) {
      case "apply":
        return applyOnePhase();
      case "apply_resolved":
        return applyResolved();
      case "prepare":
        return prepare();
      case "prepare_resolved":
        return prepareResolved();
      case "pre_commit":
        return preCommit();
      case "commit":
        return commit();
      case "commit_resolved":
        return commitResolved();
      case "abort":
        return abort();
      case "create_status":
        return createStatus();
      case "cas_status":
        return casStatus();
      case "forget_status":
        return forgetStatus();
      case "drop_map":
        return dropMap();
      case "forget_versions":
        forget(args.number());
        return reply("ack", 1L);
      default:
        throw new IllegalArgumentException("unknown step " + step);
    }
  }

  // Helpers ------------------------------------------------------------------------------

  static String lockField(String map, String key) {
    return map + '\0' + key;
  }

  private static <K, V> void remember(LinkedHashMap<K, V> records, K field, V value) {
    records.put(field, value);
    Iterator<K> oldest = records.keySet().iterator();
    while (records.size() > REMEMBERED_MAX) {
      oldest.next();
      oldest.remove();
    }
  }

  private static boolean compatible(String wanted, String held) {
    switch (wanted) {
      case "S":
        return held.equals("S") || held.equals("R");
      case "I":
        return held.equals("I") || held.equals("R");
      case "R":
        return held.equals("S") || held.equals("I") || held.equals("R");
      default:
        return false;
    }
  }

  long currentVersion(String map, String key) {
    MapData data = state.maps.get(map);
    Long version = data == null ? null : data.versions.get(key);
    return version == null ? 0 : version;
  }

  long referenceCount(String map, String key) {
    MapData data = state.maps.get(map);
    Long count = data == null ? null : data.references.get(key);
    return count == null ? 0 : count;
  }

  private static final class Read {
    final String map;
    final String key;
    final long version;

    Read(String map, String key, long version) {
      this.map = map;
      this.key = key;
      this.version = version;
    }
  }

  private List<Read> parseReads() {
    long count = args.number();
    List<Read> reads = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      reads.add(new Read(args.text(), args.text(), args.number()));
    }
    return reads;
  }

  private List<Write> parseWrites() {
    long count = args.number();
    List<Write> writes = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      String op = args.text();
      String map = args.text();
      String key = args.text();
      byte[] value = args.bytes();
      String condition = args.text();
      writes.add(new Write(op, map, key, value, condition, args.number()));
    }
    return writes;
  }

  /** The lock each key needs (grid.locks.lock_modes for PUT, DELETE and REFERENCE). */
  private static LinkedHashMap<String, String> lockModes(List<Read> reads, List<Write> writes) {
    LinkedHashMap<String, String> modes = new LinkedHashMap<>();
    for (Read read : reads) {
      want(modes, lockField(read.map, read.key), "S");
    }
    for (Write write : writes) {
      String mode = write.op.equals("REFERENCE") ? "R" : "X";
      if (!write.condition.isEmpty()) {
        mode = "X";
      }
      want(modes, lockField(write.map, write.key), mode);
    }
    return modes;
  }

  private static void want(Map<String, String> modes, String field, String mode) {
    String held = modes.get(field);
    if (held == null || held.equals(mode)) {
      modes.put(field, mode);
    } else if ((held.equals("S") && mode.equals("R")) || (held.equals("R") && mode.equals("S"))) {
      modes.put(field, "S");
    } else if ((held.equals("I") && mode.equals("R")) || (held.equals("R") && mode.equals("I"))) {
      modes.put(field, "I");
    } else {
      modes.put(field, "X");
    }
  }

  private static String[] split(String field) {
    int nul = field.indexOf('\0');
    return new String[] {field.substring(0, nul), field.substring(nul + 1)};
  }

  private List<Object> lockRefusal(String field, String mode, String txn) {
    Map<String, String> holders = state.locks.get(field);
    if (holders == null) {
      return null;
    }
    for (Map.Entry<String, String> holder : holders.entrySet()) {
      if (!holder.getKey().equals(txn) && !compatible(mode, holder.getValue())) {
        String[] target = split(field);
        return reply(
            "conflict",
            "'" + target[0] + "/" + target[1] + "' is locked by a transaction in flight",
            target[0],
            target[1]);
      }
    }
    return null;
  }

  private List<Object> readRefusal(Read read) {
    long now = currentVersion(read.map, read.key);
    if (now != read.version) {
      return reply(
          "conflict",
          "'" + read.map + "/" + read.key + "' changed since it was read (read version "
              + read.version + ", now " + now + ")",
          read.map,
          read.key);
    }
    return null;
  }

  private static List<Object> conditionRefusal(Write write, long version) {
    String where = "'" + write.map + "/" + write.key + "'";
    if (write.condition.equals("if_absent") && version != 0) {
      return reply("precondition", where + " exists (condition if_absent)", write.map, write.key);
    }
    if (write.condition.equals("if_exists") && version == 0) {
      return reply(
          "precondition", where + " does not exist (condition if_exists)", write.map, write.key);
    }
    if (write.condition.equals("if_version") && version != write.conditionVersion) {
      return reply(
          "precondition",
          where + " is at version " + version + ", not " + write.conditionVersion
              + " (condition if_version)",
          write.map,
          write.key);
    }
    return null;
  }

  /**
   * Checks the writes applied in order, each seeing the ones before it; fills {@code removed}
   * with the positions (0-based) of the deletes that found a value. The refusal, or null.
   */
  private List<Object> checkWrites(
      List<Write> writes, long stepVersion, boolean check, List<Long> removed) {
    Map<String, Boolean> pending = new HashMap<>();
    Map<String, Long> references = new HashMap<>();
    for (int position = 0; position < writes.size(); position++) {
      Write write = writes.get(position);
      String field = lockField(write.map, write.key);
      String where = "'" + write.map + "/" + write.key + "'";
      long version;
      if (pending.containsKey(field)) {
        version = pending.get(field) ? stepVersion : 0;
      } else {
        version = currentVersion(write.map, write.key);
      }
      if (check && !write.condition.isEmpty()) {
        List<Object> refusal = conditionRefusal(write, version);
        if (refusal != null) {
          return refusal;
        }
      }
      if (write.op.equals("REFERENCE")) {
        long change = Long.parseLong(new String(write.value, StandardCharsets.UTF_8));
        if (check && change > 0 && version == 0) {
          return reply(
              "precondition", "referenced key " + where + " does not exist", write.map, write.key);
        }
        references.merge(field, change, Long::sum);
      } else if (write.op.equals("DELETE")) {
        long count = referenceCount(write.map, write.key) + references.getOrDefault(field, 0L);
        if (check && count > 0 && version != 0) {
          return reply(
              "precondition",
              where + " is referenced by " + count + " value(s); change or delete them first",
              write.map,
              write.key);
        }
        if (version != 0) {
          removed.add((long) position);
        }
        pending.put(field, false);
      } else {
        pending.put(field, true);
      }
    }
    return null;
  }

  private long prospectiveVersion(long given) {
    return given != 0 ? given : state.lsn + 1;
  }

  private long nextLsn() {
    return ++state.lsn;
  }

  /** Keeps the state a commit at endVersion is about to replace (call it first). */
  private void keep(String map, String key, long endVersion) {
    MapData data = state.maps.get(map);
    byte[] old = data == null ? null : data.values.get(key);
    if (old == null) {
      return;
    }
    long begin = data.versions.get(key);
    data.history.computeIfAbsent(key, unused -> new TreeMap<>()).put(endVersion, new Kept(begin, old));
    state.expiring.add(new Expiring(endVersion, map, key));
  }

  /** Drops kept states that ended at or before the horizon, at most FORGET_MAX per step. */
  void forget(long horizon) {
    if (horizon <= 0) {
      return;
    }
    int forgotten = 0;
    Iterator<Expiring> oldest = state.expiring.iterator();
    while (oldest.hasNext() && forgotten < FORGET_MAX) {
      Expiring item = oldest.next();
      if (item.end > horizon) {
        break;
      }
      MapData data = state.maps.get(item.map);
      TreeMap<Long, Kept> states = data == null ? null : data.history.get(item.key);
      if (states != null) {
        states.headMap(item.end, true).clear();
        if (states.isEmpty()) {
          data.history.remove(item.key);
        }
      }
      state.floor = Math.max(state.floor, item.end);
      oldest.remove();
      forgotten++;
    }
  }

  /**
   * Commits from several coordinators reach a partition out of number order, so the map's
   * version keeps the newest; its change count moves on every change, whatever its version.
   */
  private void mapChanged(String map, long version) {
    if (version > state.mapVersions.getOrDefault(map, 0L)) {
      state.mapVersions.put(map, version);
    }
    state.mapChanges.merge(map, 1L, Long::sum);
  }

  /** The newest version a key was written or deleted at (its value's, or its last kept end). */
  private long newestVersion(String map, String key) {
    long current = currentVersion(map, key);
    MapData data = state.maps.get(map);
    TreeMap<Long, Kept> states = data == null ? null : data.history.get(key);
    if (states != null && !states.isEmpty() && states.lastKey() > current) {
      return states.lastKey();
    }
    return current;
  }

  /**
   * A one-phase step whose commit number is older than a key's newest version: another
   * coordinator's commit, numbered later, reached the key first; the step refuses before it
   * writes and the coordinator takes a new number (grid.errors.StaleVersion).
   */
  private List<Object> staleRefusal(List<Write> writes, long givenVersion) {
    if (givenVersion == 0) {
      return null;
    }
    for (Write write : writes) {
      if (!write.op.equals("REFERENCE") && newestVersion(write.map, write.key) > givenVersion) {
        return reply(
            "stale",
            "'" + write.map + "/" + write.key + "' has a newer version than commit " + givenVersion,
            write.map,
            write.key);
      }
    }
    return null;
  }

  private List<Long> install(List<Write> writes, long version) {
    List<Long> versions = new ArrayList<>();
    for (Write write : writes) {
      MapData data = state.map(write.map);
      if (write.op.equals("REFERENCE")) {
        long change = Long.parseLong(new String(write.value, StandardCharsets.UTF_8));
        long count = data.references.getOrDefault(write.key, 0L) + change;
        if (count <= 0) {
          data.references.remove(write.key);
        } else {
          data.references.put(write.key, count);
        }
        versions.add(currentVersion(write.map, write.key));
      } else if (write.op.equals("DELETE")) {
        keep(write.map, write.key, version);
        mapChanged(write.map, version);
        data.values.remove(write.key);
        data.versions.remove(write.key);
        versions.add(0L);
      } else {
        keep(write.map, write.key, version);
        mapChanged(write.map, version);
        data.values.put(write.key, write.value);
        data.versions.put(write.key, version);
        versions.add(version);
      }
    }
    if (version > state.version) {
      state.version = version;
    }
    return versions;
  }

  private static byte[] answer(List<Long> versions, List<Long> removed) {
    return ("{\"versions\":" + versions + ",\"removed\":" + removed + "}")
        .replace(" ", "")
        .getBytes(StandardCharsets.UTF_8);
  }

  // One-phase steps ----------------------------------------------------------------------

  /**
   * A one-phase step past its commit number's deadline (the number's lease by the member's
   * clock): another coordinator may have released the number, so the step must not use it.
   */
  private List<Object> expiredRefusal(long deadline) {
    if (deadline <= 0 || nowMs <= deadline) {
      return null;
    }
    return reply("stale", "the commit number outlived its lease", "", "");
  }

  private List<Object> applyOnePhase() {
    String request = args.text();
    long givenVersion = args.number();
    long horizon = args.number();
    long deadline = args.number();
    if (!request.isEmpty() && state.outcomes.containsKey(request)) {
      return reply("applied", 1L, state.outcomes.get(request));
    }
    List<Object> expired = expiredRefusal(deadline);
    if (expired != null) {
      return expired;
    }
    List<Read> reads = parseReads();
    List<Write> writes = parseWrites();
    for (Read read : reads) {
      List<Object> refusal = readRefusal(read);
      if (refusal != null) {
        return refusal;
      }
    }
    LinkedHashMap<String, String> modes = lockModes(reads, writes);
    for (Map.Entry<String, String> mode : modes.entrySet()) {
      List<Object> refusal = lockRefusal(mode.getKey(), mode.getValue(), "");
      if (refusal != null) {
        return refusal;
      }
    }
    List<Object> stale = staleRefusal(writes, givenVersion);
    if (stale != null) {
      return stale;
    }
    List<Long> removed = new ArrayList<>();
    List<Object> refusal = checkWrites(writes, prospectiveVersion(givenVersion), true, removed);
    if (refusal != null) {
      return refusal;
    }
    long lsn = nextLsn();
    long version = givenVersion != 0 ? givenVersion : lsn;
    byte[] encoded = answer(install(writes, version), removed);
    if (!request.isEmpty()) {
      remember(state.outcomes, request, encoded);
    }
    forget(horizon);
    return reply("applied", 0L, encoded);
  }

  /** Holders as the client read them: the JSON object it sent back ("" for none). */
  private static Map<String, String> parseHolders(String text) {
    Map<String, String> holders = new HashMap<>();
    Matcher matcher = HOLDER.matcher(text);
    while (matcher.find()) {
      holders.put(matcher.group(1), matcher.group(2));
    }
    return holders;
  }

  /** Whether a key still has the version, lock holders and reference count the client read. */
  private boolean unchanged(String map, String key, long expected, String holders, long refs) {
    if (currentVersion(map, key) != expected || referenceCount(map, key) != refs) {
      return false;
    }
    Map<String, String> now = state.locks.get(lockField(map, key));
    if (now == null || now.isEmpty()) {
      return holders.isEmpty();
    }
    return new HashMap<>(now).equals(parseHolders(holders));
  }

  /** Versions of an answer from the client's template: 'v' is the step's version. */
  private static List<Long> fromTemplate(String template, long version) {
    List<Long> versions = new ArrayList<>();
    String inner = template.replaceAll("[\\[\\]\" ]", "");
    if (inner.isEmpty()) {
      return versions;
    }
    for (String kind : inner.split(",")) {
      versions.add(kind.equals("v") ? version : Long.parseLong(kind));
    }
    return versions;
  }

  private static List<Long> numbers(String json) {
    List<Long> found = new ArrayList<>();
    String inner = json.replaceAll("[\\[\\] ]", "");
    if (!inner.isEmpty()) {
      for (String number : inner.split(",")) {
        found.add(Long.parseLong(number));
      }
    }
    return found;
  }

  private List<Object> applyResolved() {
    String request = args.text();
    long givenVersion = args.number();
    long horizon = args.number();
    long deadline = args.number();
    if (!request.isEmpty() && state.outcomes.containsKey(request)) {
      return reply("applied", 1L, state.outcomes.get(request));
    }
    List<Object> expired = expiredRefusal(deadline);
    if (expired != null) {
      return expired;
    }
    long count = args.number();
    boolean same = true;
    for (long i = 0; i < count; i++) {
      String map = args.text();
      String key = args.text();
      long expected = args.number();
      String holders = args.text();
      long references = args.number();
      same = same && unchanged(map, key, expected, holders, references);
    }
    if (!same) {
      return reply("retry");
    }
    List<Write> writes = parseWrites();
    List<Object> stale = staleRefusal(writes, givenVersion);
    if (stale != null) {
      return stale;
    }
    String template = args.text();
    List<Long> removed = numbers(args.text());
    long lsn = nextLsn();
    long version = givenVersion != 0 ? givenVersion : lsn;
    install(writes, version);
    byte[] encoded = answer(fromTemplate(template, version), removed);
    if (!request.isEmpty()) {
      remember(state.outcomes, request, encoded);
    }
    forget(horizon);
    return reply("applied", 0L, encoded);
  }

  // Three-phase steps ----------------------------------------------------------------------

  private List<Object> stage(
      String txn,
      long lease,
      long statusPartition,
      boolean durable,
      LinkedHashMap<String, String> modes,
      List<Write> writes) {
    Staged staged = new Staged();
    for (Map.Entry<String, String> mode : modes.entrySet()) {
      state.locks.computeIfAbsent(mode.getKey(), unused -> new LinkedHashMap<>())
          .put(txn, mode.getValue());
      staged.locks.add(mode.getKey());
    }
    staged.state = "prepared";
    staged.lease = lease;
    staged.statusPartition = statusPartition;
    staged.durable = durable;
    for (Write write : writes) {
      staged.writes.add(new Write(write.op, write.map, write.key, write.value, "", 0));
    }
    state.staged.put(txn, staged);
    if (durable) {
      nextLsn();
    }
    return reply("yes");
  }

  private static List<Object> no(List<Object> refusal) {
    return reply("no", refusal.get(1), refusal.get(0), refusal.get(2), refusal.get(3));
  }

  private List<Object> prepare() {
    String txn = args.text();
    long lease = args.number();
    long statusPartition = args.number();
    boolean durable = args.text().equals("1");
    if (state.staged.containsKey(txn)) {
      return reply("yes");
    }
    String decided = state.decided.get(txn);
    if (decided != null) {
      return reply("no", "the transaction was already " + decided + " here");
    }
    List<Read> reads = parseReads();
    List<Write> writes = parseWrites();
    LinkedHashMap<String, String> modes = lockModes(reads, writes);
    for (Map.Entry<String, String> mode : modes.entrySet()) {
      List<Object> refusal = lockRefusal(mode.getKey(), mode.getValue(), txn);
      if (refusal != null) {
        return no(refusal);
      }
    }
    for (Read read : reads) {
      List<Object> refusal = readRefusal(read);
      if (refusal != null) {
        return no(refusal);
      }
    }
    List<Object> refusal = checkWrites(writes, prospectiveVersion(0), true, new ArrayList<>());
    if (refusal != null) {
      return no(refusal);
    }
    return stage(txn, lease, statusPartition, durable, modes, writes);
  }

  private List<Object> prepareResolved() {
    String txn = args.text();
    long lease = args.number();
    long statusPartition = args.number();
    boolean durable = args.text().equals("1");
    if (state.staged.containsKey(txn)) {
      return reply("yes");
    }
    String decided = state.decided.get(txn);
    if (decided != null) {
      return reply("no", "the transaction was already " + decided + " here");
    }
    long count = args.number();
    LinkedHashMap<String, String> modes = new LinkedHashMap<>();
    boolean same = true;
    for (long i = 0; i < count; i++) {
      String map = args.text();
      String key = args.text();
      long expected = args.number();
      String holders = args.text();
      long references = args.number();
      same = same && unchanged(map, key, expected, holders, references);
      modes.put(lockField(map, key), args.text());
    }
    if (!same) {
      return reply("retry");
    }
    return stage(txn, lease, statusPartition, durable, modes, parseWrites());
  }

  private void release(String txn, Staged staged) {
    for (String field : staged.locks) {
      LinkedHashMap<String, String> holders = state.locks.get(field);
      if (holders != null) {
        holders.remove(txn);
        if (holders.isEmpty()) {
          state.locks.remove(field);
        }
      }
    }
    state.staged.remove(txn);
  }

  private List<Object> preCommit() {
    Staged staged = state.staged.get(args.text());
    if (staged == null) {
      return reply("ack", 0L);
    }
    if (!staged.state.equals("pre_committed")) {
      staged.state = "pre_committed";
      nextLsn();
    }
    return reply("ack", 1L);
  }

  private List<Object> commit() {
    String txn = args.text();
    long givenVersion = args.number();
    long horizon = args.number();
    Staged staged = state.staged.get(txn);
    if (staged == null) {
      return reply("ack", 0L);
    }
    for (Write write : staged.writes) {
      // Increments, appends and sketch adds are resolved by the client (commit_resolved).
      if (!write.op.equals("PUT") && !write.op.equals("DELETE") && !write.op.equals("REFERENCE")) {
        return reply("hooked");
      }
    }
    List<Long> removed = new ArrayList<>();
    checkWrites(staged.writes, prospectiveVersion(givenVersion), false, removed);
    release(txn, staged);
    remember(state.decided, txn, "committed");
    if (!staged.durable) {
      return reply("ack", 1L);
    }
    long lsn = nextLsn();
    long version = givenVersion != 0 ? givenVersion : lsn;
    byte[] encoded = answer(install(staged.writes, version), removed);
    remember(state.outcomes, txn, encoded);
    forget(horizon);
    return reply("applied", 0L, encoded);
  }

  private List<Object> commitResolved() {
    String txn = args.text();
    long givenVersion = args.number();
    long horizon = args.number();
    Staged staged = state.staged.get(txn);
    if (staged == null) {
      return reply("ack", 0L);
    }
    long count = args.number();
    boolean same = true;
    for (long i = 0; i < count; i++) {
      String map = args.text();
      String key = args.text();
      same = same && currentVersion(map, key) == args.number();
    }
    if (!same) {
      return reply("retry");
    }
    List<Write> writes = parseWrites();
    String template = args.text();
    List<Long> removed = numbers(args.text());
    release(txn, staged);
    remember(state.decided, txn, "committed");
    if (!staged.durable) {
      return reply("ack", 1L);
    }
    long lsn = nextLsn();
    long version = givenVersion != 0 ? givenVersion : lsn;
    install(writes, version);
    byte[] encoded = answer(fromTemplate(template, version), removed);
    remember(state.outcomes, txn, encoded);
    forget(horizon);
    return reply("applied", 0L, encoded);
  }

  private List<Object> abort() {
    String txn = args.text();
    Staged staged = state.staged.get(txn);
    if (staged == null) {
      // An abort that overtook its prepare: remember it, so the prepare votes no.
      if (!state.decided.containsKey(txn)) {
        remember(state.decided, txn, "aborted");
      }
      return reply("ack", 0L);
    }
    release(txn, staged);
    remember(state.decided, txn, "aborted");
    if (staged.durable) {
      nextLsn();
    }
    return reply("ack", 1L);
  }

  // Status records -------------------------------------------------------------------------

  static List<Object> statusReply(PartitionState state, String txn, boolean swapped) {
    Status status = state.statuses.get(txn);
    if (status == null) {
      return reply("status", "", "[]", 0L, 0L);
    }
    return reply("status", status.state, status.participants, status.lease, swapped ? 1L : 0L);
  }

  private List<Object> createStatus() {
    String txn = args.text();
    if (state.statuses.containsKey(txn)) {
      return statusReply(state, txn, false);
    }
    Status status = new Status();
    status.state = "pending";
    status.participants = args.text();
    status.lease = args.number();
    status.updated = args.number();
    state.putStatus(txn, status);
    nextLsn();
    return statusReply(state, txn, true);
  }

  private List<Object> casStatus() {
    String txn = args.text();
    String expected = args.text();
    String next = args.text();
    long now = args.number();
    // A lease given moves the record's lease too: how the driving coordinator renews it.
    long lease = args.more() ? args.number() : 0;
    Status status = state.statuses.get(txn);
    if (status == null || !status.state.equals(expected)) {
      return statusReply(state, txn, false);
    }
    state.changeStatus(txn, status, next, now, lease);
    nextLsn();
    return statusReply(state, txn, true);
  }

  private List<Object> forgetStatus() {
    String txn = args.text();
    Status status = state.statuses.get(txn);
    if (status == null) {
      return reply("ack", 0L);
    }
    if (!status.state.equals("committed") && !status.state.equals("aborted")) {
      return reply("ack", 1L);
    }
    state.removeStatus(txn);
    nextLsn();
    return reply("ack", 1L);
  }

  private List<Object> dropMap() {
    String map = args.text();
    String prefix = map + '\0';
    for (String field : state.locks.keySet()) {
      if (field.startsWith(prefix)) {
        return reply(
            "precondition", "map '" + map + "' has keys locked by transactions in flight", map, "");
      }
    }
    state.maps.remove(map);
    state.expiring.removeIf(item -> item.map.equals(map));
    state.mapVersions.remove(map);
    // Counted on, never reset: a map made again under the name has no image cached under it.
    state.mapChanges.merge(map, 1L, Long::sum);
    nextLsn();
    return reply("ack", 1L);
  }
}
