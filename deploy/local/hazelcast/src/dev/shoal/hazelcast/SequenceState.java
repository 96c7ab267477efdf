package dev.shoal.hazelcast;

import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/** A namespace's commit sequence: the last number handed out and the numbers held. */
public final class SequenceState implements IdentifiedDataSerializable {
  public static final int CLASS_ID = 6;

  /** Who holds a number, and until when (the member's milliseconds). */
  public static final class Holder {
    public final long leaseMs;
    public final String owner;

    public Holder(long leaseMs, String owner) {
      this.leaseMs = leaseMs;
      this.owner = owner;
    }
  }

  public long last;
  public final TreeMap<Long, Holder> flight = new TreeMap<>();
  /** The number each holder holds: a holder (a transaction) holds at most one. */
  public final HashMap<String, Long> numbers = new HashMap<>();

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
    out.writeLong(last);
    out.writeInt(flight.size());
    for (Map.Entry<Long, Holder> held : flight.entrySet()) {
      out.writeLong(held.getKey());
      out.writeLong(held.getValue().leaseMs);
      out.writeString(held.getValue().owner);
    }
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    last = in.readLong();
    for (int i = in.readInt(); i > 0; i--) {
      long number = in.readLong();
      Holder holder = new Holder(in.readLong(), in.readString());
      flight.put(number, holder);
      numbers.put(holder.owner, number);
    }
  }
}
