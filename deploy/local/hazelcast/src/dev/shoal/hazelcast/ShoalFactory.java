package dev.shoal.hazelcast;

import com.hazelcast.nio.serialization.DataSerializableFactory;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;

/** Creates Shoal's member-side classes by id; registered in the member's hazelcast.xml. */
public final class ShoalFactory implements DataSerializableFactory {
  public static final int ID = 7001;

  @Override
  public IdentifiedDataSerializable create(int typeId) {
    return typeId == StepProcessor.CLASS_ID ? new StepProcessor() : null;
  }
}
