package dev.shoal.hazelcast;

import com.hazelcast.nio.serialization.DataSerializableFactory;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;

/** Creates Shoal's member-side classes by id; registered in the member's hazelcast.xml. */
public final class ShoalFactory implements DataSerializableFactory {
  public static final int ID = 7001;

  @Override
  public IdentifiedDataSerializable create(int typeId) {
    switch (typeId) {
      case StepProcessor.CLASS_ID:
        return new StepProcessor();
      case PartitionProcessor.CLASS_ID:
        return new PartitionProcessor();
      case PartitionReader.CLASS_ID:
        return new PartitionReader();
      case PartitionState.CLASS_ID:
        return new PartitionState();
      case SequenceProcessor.CLASS_ID:
        return new SequenceProcessor();
      case SequenceState.CLASS_ID:
        return new SequenceState();
      default:
        return null;
    }
  }
}
