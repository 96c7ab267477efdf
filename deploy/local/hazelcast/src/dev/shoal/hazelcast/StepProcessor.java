package dev.shoal.hazelcast;

import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

/**
 * One participant step on one key's record, run by the member that owns the key, on the
 * partition thread: atomic, one round trip. Used by loadtests/bench/steps (variant "processor").
 *
 * <p>A record is {@code version:long | lock:int+utf8 | state:byte | staged:int+bytes |
 * value:int+bytes}; a status record is the state's UTF-8 name. Every step returns 1 when it
 * applied (or found the work already done) and 0 when it refuses.
 */
public final class StepProcessor
    implements EntryProcessor<Object, byte[], Integer>, IdentifiedDataSerializable {
  public static final int CLASS_ID = 1;
  public static final int ONE_PHASE = 1;
  public static final int PREPARE = 2;
  public static final int PRECOMMIT = 3;
  public static final int COMMIT = 4;
  public static final int ABORT = 5;
  public static final int STATUS = 6;
  private static final byte NONE = 0;
  private static final byte PREPARED = 1;
  private static final byte PRE_COMMITTED = 2;

  private int op;
  private String text;
  private byte[] data;

  public StepProcessor() {}

  @Override
  public Integer process(Map.Entry<Object, byte[]> entry) {
    if (op == STATUS) {
      return swapStatus(entry);
    }
    Record record = Record.decode(entry.getValue());
    switch (op) {
      case ONE_PHASE:
        if (!record.lock.isEmpty()) {
          return 0;
        }
        record.version += 1;
        record.value = data;
        break;
      case PREPARE:
        if (!record.lock.isEmpty() && !record.lock.equals(text)) {
          return 0;
        }
        record.lock = text;
        record.state = PREPARED;
        record.staged = data;
        break;
      case PRECOMMIT:
        if (!record.lock.equals(text) || record.state != PREPARED) {
          return 1;
        }
        record.state = PRE_COMMITTED;
        break;
      case COMMIT:
        if (!record.lock.equals(text)) {
          return 1;
        }
        record.version += 1;
        record.value = record.staged;
        record.clearLock();
        break;
      case ABORT:
        if (!record.lock.equals(text)) {
          return 1;
        }
        record.clearLock();
        break;
      default:
        throw new IllegalArgumentException("unknown step " + op);
    }
    entry.setValue(record.encode());
    return 1;
  }

  /** text = expected state ("" = absent), data = the new state's UTF-8 name. */
  private Integer swapStatus(Map.Entry<Object, byte[]> entry) {
    byte[] current = entry.getValue();
    String state = current == null ? "" : new String(current, StandardCharsets.UTF_8);
    if (!state.equals(text)) {
      return 0;
    }
    entry.setValue(data);
    return 1;
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
    out.writeInt(op);
    out.writeString(text);
    out.writeByteArray(data);
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    op = in.readInt();
    text = in.readString();
    data = in.readByteArray();
    if (data == null) {
      data = new byte[0];
    }
  }

  private static final class Record {
    long version;
    String lock = "";
    byte state = NONE;
    byte[] staged = new byte[0];
    byte[] value = new byte[0];

    static Record decode(byte[] raw) {
      Record record = new Record();
      if (raw == null) {
        return record;
      }
      ByteBuffer buffer = ByteBuffer.wrap(raw);
      record.version = buffer.getLong();
      record.lock = new String(take(buffer), StandardCharsets.UTF_8);
      record.state = buffer.get();
      record.staged = take(buffer);
      record.value = take(buffer);
      return record;
    }

    private static byte[] take(ByteBuffer buffer) {
      byte[] bytes = new byte[buffer.getInt()];
      buffer.get(bytes);
      return bytes;
    }

    void clearLock() {
      lock = "";
      state = NONE;
      staged = new byte[0];
    }

    byte[] encode() {
      byte[] lockBytes = lock.getBytes(StandardCharsets.UTF_8);
      ByteBuffer buffer =
          ByteBuffer.allocate(8 + 4 + lockBytes.length + 1 + 4 + staged.length + 4 + value.length);
      buffer.putLong(version);
      buffer.putInt(lockBytes.length).put(lockBytes);
      buffer.put(state);
      buffer.putInt(staged.length).put(staged);
      buffer.putInt(value.length).put(value);
      return Arrays.copyOf(buffer.array(), buffer.position());
    }
  }
}
