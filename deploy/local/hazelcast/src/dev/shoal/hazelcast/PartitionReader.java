package dev.shoal.hazelcast;

import com.hazelcast.core.ReadOnly;
import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import dev.shoal.hazelcast.PartitionState.Kept;
import dev.shoal.hazelcast.PartitionState.MapData;
import dev.shoal.hazelcast.PartitionState.Staged;
import dev.shoal.hazelcast.PartitionState.Status;
import dev.shoal.hazelcast.PartitionState.Write;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Reads of a partition's state that change nothing (committed entries, entries at a read
 * version, status and staged records, what a step with a Python hook reads): read-only, so
 * Hazelcast sends nothing to backups. Each read sees the state between two steps.
 */
public final class PartitionReader
    implements EntryProcessor<Object, PartitionState, List<Object>>,
        IdentifiedDataSerializable,
        ReadOnly {
  public static final int CLASS_ID = 3;

  private String read;
  private byte[][] arguments;

  public PartitionReader() {}

  @Override
  public List<Object> process(Map.Entry<Object, PartitionState> entry) {
    PartitionState state = entry.getValue();
    if (state == null) {
      state = new PartitionState();
    }
    PartitionSteps.Arguments args = new PartitionSteps.Arguments(arguments);
    List<Object> result = new ArrayList<>();
    switch (read) {
      case "get":
        {
          MapData data = state.maps.get(args.text());
          String key = args.text();
          byte[] value = data == null ? null : data.values.get(key);
          if (value != null) {
            result.add(value);
            result.add(data.versions.get(key));
          }
          return result;
        }
      case "lookup":
        {
          // Many keys of one map at one instant: the map, a read version (0 for the latest),
          // then the keys; replies "ok" then per key its value and version (an empty value and
          // version 0 where absent), or "too_old" and the floor when a state it needs was
          // forgotten. One call per partition serves a get-many.
          String map = args.text();
          long version = args.number();
          MapData data = state.maps.get(map);
          result.add("ok");
          while (args.more()) {
            String key = args.text();
            List<Object> found = new ArrayList<>(2);
            if (version == 0) {
              byte[] value = data == null ? null : data.values.get(key);
              if (value != null) {
                found.add(value);
                found.add(data.versions.get(key));
              }
            } else if (!at(state, map, key, version, found)) {
              return tooOld(state, version);
            }
            if (found.isEmpty()) {
              result.add(new byte[0]);
              result.add(0L);
            } else {
              result.addAll(found);
            }
          }
          return result;
        }
      case "get_at":
        {
          String map = args.text();
          String key = args.text();
          long version = args.number();
          result.add("ok");
          return at(state, map, key, version, result) ? result : tooOld(state, version);
        }
      case "items":
        {
          MapData data = state.maps.get(args.text());
          if (data != null) {
            for (Map.Entry<String, byte[]> value : data.values.entrySet()) {
              result.add(value.getKey());
              result.add(value.getValue());
              result.add(data.versions.get(value.getKey()));
            }
          }
          return result;
        }
      case "items_at":
        {
          String map = args.text();
          long version = args.number();
          MapData data = state.maps.get(map);
          result.add("ok");
          if (data == null) {
            return result;
          }
          // Keys deleted after the version existed then: only their kept states know them.
          TreeSet<String> keys = new TreeSet<>(data.values.keySet());
          keys.addAll(data.history.keySet());
          for (String key : keys) {
            List<Object> found = new ArrayList<>();
            if (!at(state, map, key, version, found)) {
              return tooOld(state, version);
            }
            if (!found.isEmpty()) {
              result.add(key);
              result.addAll(found);
            }
          }
          return result;
        }
      case "map_state":
        {
          String map = args.text();
          result.add(state.mapChanges.getOrDefault(map, 0L));
          result.add(state.mapVersions.getOrDefault(map, 0L));
          return result;
        }
      case "map_size":
        {
          // Entries and the bytes of their keys and values (what Shoal stores, not the JVM's
          // overhead around it).
          MapData data = state.maps.get(args.text());
          long bytes = 0;
          if (data != null) {
            for (Map.Entry<String, byte[]> value : data.values.entrySet()) {
              bytes += value.getKey().length() + value.getValue().length + 8;
            }
          }
          result.add(data == null ? 0L : (long) data.values.size());
          result.add(bytes);
          return result;
        }
      case "meta":
        result.add(state.version);
        result.add((long) state.expiring.size());
        return result;
      case "status":
        return PartitionSteps.statusReply(state, args.text(), false);
      case "outcome":
        {
          byte[] previous = state.outcomes.get(args.text());
          return previous == null
              ? PartitionSteps.reply("ack", 0L)
              : PartitionSteps.reply("applied", 1L, previous);
        }
      case "status_records":
        for (Map.Entry<String, Status> status : state.statuses.entrySet()) {
          result.add(status.getKey());
          result.add(status.getValue().state);
          result.add(status.getValue().participants);
          result.add(status.getValue().lease);
          result.add(status.getValue().updated);
        }
        return result;
      case "sweep_statuses":
        return sweepStatuses(state, args);
      case "staged":
        for (Map.Entry<String, Staged> staged : state.staged.entrySet()) {
          result.add(staged.getKey());
          result.add(staged.getValue().state);
          result.add(staged.getValue().lease);
          result.add(staged.getValue().statusPartition);
        }
        return result;
      case "staged_writes":
        {
          Staged staged = state.staged.get(args.text());
          if (staged == null) {
            result.add(-1L);
            return result;
          }
          result.add((long) staged.writes.size());
          for (Write write : staged.writes) {
            result.add(write.op);
            result.add(write.map);
            result.add(write.key);
            result.add(write.value);
          }
          return result;
        }
      case "records":
        {
          // What a step with a Python hook reads, per key: value (empty when absent), version,
          // the number of lock holders and their (transaction, mode) pairs, reference count.
          int count = (int) args.number();
          PartitionSteps steps = new PartitionSteps(state, new byte[0][], 0);
          for (int i = 0; i < count; i++) {
            String map = args.text();
            String key = args.text();
            MapData data = state.maps.get(map);
            byte[] value = data == null ? null : data.values.get(key);
            result.add(value == null ? new byte[0] : value);
            result.add(steps.currentVersion(map, key));
            Map<String, String> holders = state.locks.get(PartitionSteps.lockField(map, key));
            result.add(holders == null ? 0L : (long) holders.size());
            if (holders != null) {
              for (Map.Entry<String, String> holder : holders.entrySet()) {
                result.add(holder.getKey());
                result.add(holder.getValue());
              }
            }
            result.add(steps.referenceCount(map, key));
          }
          return result;
        }
      default:
        throw new IllegalArgumentException("unknown read " + read);
    }
  }

  /**
   * Adds (value, version) of the key's state at the version to found, nothing when it was
   * absent then; false when the state it needs was forgotten.
   */
  private static boolean at(
      PartitionState state, String map, String key, long version, List<Object> found) {
    MapData data = state.maps.get(map);
    byte[] value = data == null ? null : data.values.get(key);
    if (value != null && data.versions.get(key) <= version) {
      found.add(value);
      found.add(data.versions.get(key));
      return true;
    }
    if (value == null && state.mapVersions.getOrDefault(map, 0L) <= version) {
      return true;
    }
    if (version < state.floor) {
      return false;
    }
    TreeMap<Long, Kept> states = data == null ? null : data.history.get(key);
    Map.Entry<Long, Kept> first = states == null ? null : states.higherEntry(version);
    // A state starts at its own version; before it the key was absent.
    if (first != null && first.getValue().begin <= version) {
      found.add(first.getValue().value);
      found.add(first.getValue().begin);
    }
    return true;
  }

  private static List<Object> tooOld(PartitionState state, long version) {
    return PartitionSteps.reply("too_old", state.floor);
  }

  @Override
  public EntryProcessor<Object, PartitionState, List<Object>> getBackupProcessor() {
    return null;
  }

  @Override
  public int getFactoryId() {
    return ShoalFactory.ID;
  }

  @Override
  public int getClassId() {
    return CLASS_ID;
  }

  @Override
  public void writeData(ObjectDataOutput out) throws IOException {
    PartitionProcessor.writeStep(out, read, arguments);
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    read = in.readString();
    arguments = PartitionProcessor.readArguments(in);
  }

  /**
   * What one recovery sweep reads, through the status indexes (grid.backend.sweep_statuses):
   * arguments the cutoff, the limit, then the staged transactions asked about; replies how
   * many records it looked at, then three counted lists of records (transaction, state,
   * participants, lease, updated): the undecided, the decided among those asked about, and
   * the decided last updated by the cutoff, oldest first, at most the limit. The decided
   * records kept for retries and not yet due are never looked at.
   */
  private static List<Object> sweepStatuses(PartitionState state, PartitionSteps.Arguments args) {
    long updatedBy = args.number();
    long limit = args.number();
    List<Object> result = new ArrayList<>();
    result.add(0L);
    long examined = 0;
    result.add((long) state.undecidedStatuses.size());
    for (String txn : state.undecidedStatuses) {
      addStatus(result, txn, state.statuses.get(txn));
      examined++;
    }
    int stagedCount = result.size();
    result.add(0L);
    long staged = 0;
    while (args.more()) {
      String txn = args.text();
      if (state.undecidedStatuses.contains(txn)) {
        continue;
      }
      Status status = state.statuses.get(txn);
      examined++;
      if (status != null && PartitionState.isFinal(status.state)) {
        addStatus(result, txn, status);
        staged++;
      }
    }
    result.set(stagedCount, staged);
    int dueCount = result.size();
    result.add(0L);
    long due = 0;
    for (PartitionState.Decided decided : state.decidedStatuses) {
      if (due >= limit) {
        break;
      }
      examined++;
      if (decided.updated > updatedBy) {
        break;
      }
      addStatus(result, decided.txn, state.statuses.get(decided.txn));
      due++;
    }
    result.set(dueCount, due);
    result.set(0, examined);
    return result;
  }

  private static void addStatus(List<Object> result, String txn, Status status) {
    result.add(txn);
    result.add(status.state);
    result.add(status.participants);
    result.add(status.lease);
    result.add(status.updated);
  }
}
