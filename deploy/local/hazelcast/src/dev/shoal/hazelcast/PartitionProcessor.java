package dev.shoal.hazelcast;

import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * One participant step (grid/hazelcast/partition.py sends it) on a partition's state, run by the
 * member that owns the partition's entry on its partition thread: atomic, one round trip. The
 * same processor runs again on each backup replica; a step depends only on the state and its
 * arguments, so the replicas stay equal.
 */
public final class PartitionProcessor
    implements EntryProcessor<Object, PartitionState, List<Object>>, IdentifiedDataSerializable {
  public static final int CLASS_ID = 2;

  private String step;
  private byte[][] arguments;
  /** The member's clock, read once by the owner and sent with the processor to backups. */
  private long nowMs;

  public PartitionProcessor() {}

  @Override
  public List<Object> process(Map.Entry<Object, PartitionState> entry) {
    PartitionState state = entry.getValue();
    if (state == null) {
      state = new PartitionState();
    }
    if (nowMs == 0) {
      nowMs = System.currentTimeMillis();
    }
    List<Object> result = new PartitionSteps(state, arguments, nowMs).run(step);
    // In OBJECT format the state was changed in place; setValue makes Hazelcast record it.
    entry.setValue(state);
    return result;
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
    writeStep(out, step, arguments);
    out.writeLong(nowMs);
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    step = in.readString();
    arguments = readArguments(in);
    nowMs = in.readLong();
  }

  static void writeStep(ObjectDataOutput out, String step, byte[][] arguments)
      throws IOException {
    out.writeString(step);
    out.writeInt(arguments.length);
    for (byte[] argument : arguments) {
      out.writeByteArray(argument);
    }
  }

  static byte[][] readArguments(ObjectDataInput in) throws IOException {
    byte[][] arguments = new byte[in.readInt()][];
    for (int i = 0; i < arguments.length; i++) {
      byte[] argument = in.readByteArray();
      arguments[i] = argument == null ? new byte[0] : argument;
    }
    return arguments;
  }
}
