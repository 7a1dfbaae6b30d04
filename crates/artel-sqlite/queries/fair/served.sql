-- Records that a group was just served: it goes to the back of the rotation.
UPDATE fair_groups SET served = :now_us WHERE queue = :queue AND grp = :grp
