package dev.shoal.hazelcast;

import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The commit sequence of a namespace (grid/hazelcast/sequence.py): take the next number and
 * hold it with a lease, release it, renew it, the read version, the holders whose lease
 * passed. Leases are read from the member's clock, never a coordinator's; the clock is read
 * once per call, so a backup replica applies the very lease the owner computed.
 */
public final class SequenceProcessor
    implements EntryProcessor<Object, SequenceState, List<Object>>, IdentifiedDataSerializable {
  public static final int CLASS_ID = 5;

  private String op;
  private long number;
  private String owner;
  private long nowMs;

  static final int LOWER_LISTED_MAX = 256;

  public SequenceProcessor() {}

  private static void addLower(SequenceState state, long taken, List<Object> result) {
    java.util.SortedMap<Long, SequenceState.Holder> lower = state.flight.headMap(taken);
    result.add((long) lower.size());
    if (lower.size() <= LOWER_LISTED_MAX) {
      result.addAll(lower.keySet());
    }
  }

  @Override
  public List<Object> process(Map.Entry<Object, SequenceState> entry) {
    SequenceState state = entry.getValue();
    if (state == null) {
      state = new SequenceState();
    }
    if (nowMs == 0) {
      nowMs = System.currentTimeMillis();
    }
    List<Object> result = new ArrayList<>();
    switch (op) {
      case "take":
        {
          // number carries the lease in milliseconds. A holder holding a number gets it again:
          // a sweeper finishing a transaction commits it at the number it was given.
          // The reply is the number and its lease's end (a one-phase step refuses after it).
          // Then how many lower numbers are held and, when at most LOWER_LISTED_MAX, which:
          // the commits the taker must wait for (numbers only grow, so there are no others).
          Long held = state.numbers.get(owner);
          if (held != null) {
            result.add(held);
            result.add(state.flight.get(held).leaseMs);
            addLower(state, held, result);
            return result;
          }
          long taken = ++state.last;
          result.add(taken);
          result.add(nowMs + number);
          addLower(state, taken, result);
          state.flight.put(taken, new SequenceState.Holder(nowMs + number, owner));
          state.numbers.put(owner, taken);
          break;
        }
      case "release":
        {
          SequenceState.Holder holder = state.flight.remove(number);
          if (holder != null && Long.valueOf(number).equals(state.numbers.get(holder.owner))) {
            state.numbers.remove(holder.owner);
          }
          result.add(1L);
          break;
        }
      case "time":
        result.add(nowMs);
        return result;
      case "renew":
        {
          SequenceState.Holder holder = state.flight.get(number);
          if (holder != null) {
            state.flight.put(number, new SequenceState.Holder(nowMs + Long.parseLong(owner), holder.owner));
          }
          result.add(holder == null ? 0L : 1L);
          break;
        }
      case "read_version":
        result.add(state.flight.isEmpty() ? state.last : state.flight.firstKey() - 1);
        return result;
      case "expired":
        {
          // number carries how many of the oldest held numbers to look at, owner the margin
          // (ms) a lease must have ended by.
          long margin = owner.isEmpty() ? 0 : Long.parseLong(owner);
          Iterator<Map.Entry<Long, SequenceState.Holder>> held =
              state.flight.entrySet().iterator();
          for (long seen = 0; seen < number && held.hasNext(); seen++) {
            Map.Entry<Long, SequenceState.Holder> item = held.next();
            if (item.getValue().leaseMs + margin <= nowMs) {
              result.add(item.getKey());
              result.add(item.getValue().owner);
            }
          }
          return result;
        }
      default:
        throw new IllegalArgumentException("unknown sequence operation " + op);
    }
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
    out.writeString(op);
    out.writeLong(number);
    out.writeString(owner);
    out.writeLong(nowMs);
  }

  @Override
  public void readData(ObjectDataInput in) throws IOException {
    op = in.readString();
    number = in.readLong();
    owner = in.readString();
    nowMs = in.readLong();
  }
}
