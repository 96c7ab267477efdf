package dev.shoal.hazelcast;

import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Everything one Shoal partition keeps, as the value of one entry of the namespace's
 * partitions map: a step is one entry processor on it, so it is atomic (Hazelcast runs one
 * operation of a partition at a time), and with the map's in-memory format OBJECT a step
 * changes it in place, without serializing it. The records are those of grid/redis/steps.lua.
 */
public final class PartitionState implements IdentifiedDataSerializable {
  public static final int CLASS_ID = 4;

  /** One map's data in this partition. */
  public static final class MapData {
    public final HashMap<String, byte[]> values = new HashMap<>();
    public final HashMap<String, Long> versions = new HashMap<>();
    /** How many values reference each key (kept by REFERENCE writes). */
    public final HashMap<String, Long> references = new HashMap<>();
    /** A key's overwritten states, by the version that ended them, for reads at older versions. */
    public final HashMap<String, TreeMap<Long, Kept>> history = new HashMap<>();
  }

  /** An overwritten state: the version it began at, and its value. */
  public static final class Kept {
    public final long begin;
    public final byte[] value;

    public Kept(long begin, byte[] value) {
      this.begin = begin;
      this.value = value;
    }
  }

  /** A kept state to forget once the horizon passes its end. */
  public static final class Expiring implements Comparable<Expiring> {
    public final long end;
    public final String map;
    public final String key;

    public Expiring(long end, String map, String key) {
      this.end = end;
      this.map = map;
      this.key = key;
    }

    @Override
    public int compareTo(Expiring other) {
      int byEnd = Long.compare(end, other.end);
      if (byEnd != 0) {
        return byEnd;
      }
      int byMap = map.compareTo(other.map);
      return byMap != 0 ? byMap : key.compareTo(other.key);
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof Expiring && compareTo((Expiring) other) == 0;
    }

    @Override
    public int hashCode() {
      return Long.hashCode(end) * 31 + map.hashCode() * 17 + key.hashCode();
    }
  }

  /** One write as staged or sent: op, map, key, value, condition and its version. */
  public static final class Write {
    public final String op;
    public final String map;
    public final String key;
    public final byte[] value;
    public final String condition;
    public final long conditionVersion;

    public Write(
        String op, String map, String key, byte[] value, String condition, long version) {
      this.op = op;
      this.map = map;
      this.key = key;
      this.value = value;
      this.condition = condition;
      this.conditionVersion = version;
    }
  }

  /** A transaction prepared here and not yet decided. */
  public static final class Staged {
    public String state;
    public long lease;
    public long statusPartition;
    public boolean durable;
    public final List<String> locks = new ArrayList<>();
    public final List<Write> writes = new ArrayList<>();
  }

  /** A transaction's status record (participants kept as the JSON array the client sent). */
  public static final class Status {
    public String state;
    public String participants;
    public long lease;
    public long updated;
  }

  public long lsn;
  public long version;
  public long floor;
  /** Per map: the newest version that changed it in this partition. */
  public final HashMap<String, Long> mapVersions = new HashMap<>();
  /** Per map: how many steps changed its entries here (the SQL image cache's key). */
  public final HashMap<String, Long> mapChanges = new HashMap<>();
  public final HashMap<String, MapData> maps = new HashMap<>();
  /** "map NUL key" to its lock holders: transaction id to mode (S, X, I or R). */
  public final HashMap<String, LinkedHashMap<String, String>> locks = new HashMap<>();
  /** Answers of applied requests and committed transactions, oldest first. */
  public final LinkedHashMap<String, byte[]> outcomes = new LinkedHashMap<>();
  /** Decided transactions (committed or aborted), oldest first. */
  public final LinkedHashMap<String, String> decided = new LinkedHashMap<>();
  public final TreeMap<String, Staged> staged = new TreeMap<>();
  public final TreeMap<String, Status> statuses = new TreeMap<>();
  public final TreeSet<Expiring> expiring = new TreeSet<>();
  /**
   * The status indexes the recovery sweep reads (as the tu and tf keys of grid/redis/steps.lua):
   * the undecided records' transactions, and the decided ones ordered by when they were
   * decided. Derived from statuses, so never serialized: rebuilt when the state is read.
   */
  public final TreeSet<String> undecidedStatuses = new TreeSet<>();

  public final TreeSet<Decided> decidedStatuses = new TreeSet<>();

  /** A decided status record in the index: when it was last updated, and its transaction. */
  public static final class Decided implements Comparable<Decided> {
    public final long updated;
    public final String txn;

    public Decided(long updated, String txn) {
      this.updated = updated;
      this.txn = txn;
    }

    @Override
    public int compareTo(Decided other) {
      int byTime = Long.compare(updated, other.updated);
      return byTime != 0 ? byTime : txn.compareTo(other.txn);
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof Decided && compareTo((Decided) other) == 0;
    }

    @Override
    public int hashCode() {
      return Long.hashCode(updated) * 31 + txn.hashCode();
    }
  }

  static boolean isFinal(String state) {
    return state.equals("committed") || state.equals("aborted");
  }

  /** Adds (or replaces) a status record, keeping the indexes. */
  public void putStatus(String txn, Status status) {
    Status previous = statuses.put(txn, status);
    if (previous != null) {
      unindex(txn, previous);
    }
    index(txn, status);
  }

  /** Changes a record's state and update time (and lease when positive), keeping the indexes. */
  public void changeStatus(String txn, Status status, String state, long updated, long lease) {
    unindex(txn, status);
    status.state = state;
    status.updated = updated;
    if (lease > 0) {
      status.lease = lease;
    }
    index(txn, status);
  }

  public void removeStatus(String txn) {
    Status previous = statuses.remove(txn);
    if (previous != null) {
      unindex(txn, previous);
    }
  }

  private void index(String txn, Status status) {
    if (isFinal(status.state)) {
      decidedStatuses.add(new Decided(status.updated, txn));
    } else {
      undecidedStatuses.add(txn);
    }
  }

  private void unindex(String txn, Status status) {
    undecidedStatuses.remove(txn);
    decidedStatuses.remove(new Decided(status.updated, txn));
  }

  public MapData map(String name) {
    return maps.computeIfAbsent(name, unused -> new MapData());
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
    out.writeLong(lsn);
    out.writeLong(version);
    out.writeLong(floor);
    out.writeInt(mapVersions.size());
    for (Map.Entry<String, Long> entry : mapVersions.entrySet()) {
      out.writeString(entry.getKey());
      out.writeLong(entry.getValue());
    }
    out.writeInt(mapChanges.size());
    for (Map.Entry<String, Long> entry : mapChanges.entrySet()) {
      out.writeString(entry.getKey());
      out.writeLong(entry.getValue());
    }
    out.writeInt(maps.size());
    for (Map.Entry<String, MapData> entry : maps.entrySet()) {
      out.writeString(entry.getKey());
      MapData data = entry.getValue();
      out.writeInt(data.values.size());
      for (Map.Entry<String, byte[]> value : data.values.entrySet()) {
        out.writeString(value.getKey());
        out.writeByteArray(value.getValue());
        out.writeLong(data.versions.get(value.getKey()));
      }
      out.writeInt(data.references.size());
      for (Map.Entry<String, Long> count : data.references.entrySet()) {
        out.writeString(count.getKey());
        out.writeLong(count.getValue());
      }
      out.writeInt(data.history.size());
      for (Map.Entry<String, TreeMap<Long, Kept>> states : data.history.entrySet()) {
        out.writeString(states.getKey());
        out.writeInt(states.getValue().size());
        for (Map.Entry<Long, Kept> state : states.getValue().entrySet()) {
          out.writeLong(state.getKey());
          out.writeLong(state.getValue().begin);
          out.writeByteArray(state.getValue().value);
        }
      }
    }
    out.writeInt(locks.size());
    for (Map.Entry<String, LinkedHashMap<String, String>> entry : locks.entrySet()) {
      out.writeString(entry.getKey());
      writeStrings(out, entry.getValue());
    }
    out.writeInt(outcomes.size());
    for (Map.Entry<String, byte[]> entry : outcomes.entrySet()) {
      out.writeString(entry.getKey());
      out.writeByteArray(entry.getValue());
    }
    writeStrings(out, decided);
    out.writeInt(staged.size());
    for (Map.Entry<String, Staged> entry : staged.entrySet()) {
      Staged txn = entry.getValue();
      out.writeString(entry.getKey());
      out.writeString(txn.state);
      out.writeLong(txn.lease);
      out.writeLong(txn.statusPartition);
      out.writeBoolean(txn.durable);
      out.writeInt(txn.locks.size());
      for (String field : txn.locks) {
        out.writeString(field);
      }
      out.writeInt(txn.writes.size());
      for (Write write : txn.writes) {
        out.writeString(write.op);
        out.writeString(write.map);
        out.writeString(write.key);
        out.writeByteArray(write.value);
      }
    }
    out.writeInt(statuses.size());
    for (Map.Entry<String, Status> entry : statuses.entrySet()) {
      Status status = entry.getValue();
      out.writeString(entry.getKey());
      out.writeString(status.state);
      out.writeString(status.participants);
      out.writeLong(status.lease);
      out.writeLong(status.updated);
    }
    out.writeInt(expiring.size());
    for (Expiring item : expiring) {
      out.writeLong(item.end);
      out.writeString(item.map);
      out.writeString(item.key);
    }
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    lsn = in.readLong();
    version = in.readLong();
    floor = in.readLong();
    for (int i = in.readInt(); i > 0; i--) {
      mapVersions.put(in.readString(), in.readLong());
    }
    for (int i = in.readInt(); i > 0; i--) {
      mapChanges.put(in.readString(), in.readLong());
    }
    for (int i = in.readInt(); i > 0; i--) {
      MapData data = map(in.readString());
      for (int j = in.readInt(); j > 0; j--) {
        String key = in.readString();
        data.values.put(key, in.readByteArray());
        data.versions.put(key, in.readLong());
      }
      for (int j = in.readInt(); j > 0; j--) {
        data.references.put(in.readString(), in.readLong());
      }
      for (int j = in.readInt(); j > 0; j--) {
        TreeMap<Long, Kept> states = new TreeMap<>();
        data.history.put(in.readString(), states);
        for (int k = in.readInt(); k > 0; k--) {
          long end = in.readLong();
          states.put(end, new Kept(in.readLong(), in.readByteArray()));
        }
      }
    }
    for (int i = in.readInt(); i > 0; i--) {
      String field = in.readString();
      LinkedHashMap<String, String> holders = new LinkedHashMap<>();
      readStrings(in, holders);
      locks.put(field, holders);
    }
    for (int i = in.readInt(); i > 0; i--) {
      outcomes.put(in.readString(), in.readByteArray());
    }
    readStrings(in, decided);
    for (int i = in.readInt(); i > 0; i--) {
      String txn = in.readString();
      Staged entry = new Staged();
      entry.state = in.readString();
      entry.lease = in.readLong();
      entry.statusPartition = in.readLong();
      entry.durable = in.readBoolean();
      for (int j = in.readInt(); j > 0; j--) {
        entry.locks.add(in.readString());
      }
      for (int j = in.readInt(); j > 0; j--) {
        String op = in.readString();
        String map = in.readString();
        String key = in.readString();
        entry.writes.add(new Write(op, map, key, in.readByteArray(), "", 0));
      }
      staged.put(txn, entry);
    }
    for (int i = in.readInt(); i > 0; i--) {
      String txn = in.readString();
      Status status = new Status();
      status.state = in.readString();
      status.participants = in.readString();
      status.lease = in.readLong();
      status.updated = in.readLong();
      putStatus(txn, status);
    }
    for (int i = in.readInt(); i > 0; i--) {
      long end = in.readLong();
      String map = in.readString();
      expiring.add(new Expiring(end, map, in.readString()));
    }
  }

  private static void writeStrings(ObjectDataOutput out, Map<String, String> pairs)
      throws IOException {
    out.writeInt(pairs.size());
    for (Map.Entry<String, String> entry : pairs.entrySet()) {
      out.writeString(entry.getKey());
      out.writeString(entry.getValue());
    }
  }

  private static void readStrings(ObjectDataInput in, Map<String, String> pairs)
      throws IOException {
    for (int i = in.readInt(); i > 0; i--) {
      pairs.put(in.readString(), in.readString());
    }
  }
}
