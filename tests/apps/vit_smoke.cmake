# ctest vit_smoke: train_vit for a few steps on synthetic images with every position encoding (NoPE
# included), then eval_vit at two resolutions in both evaluations (upsample, canvas), then two runs in
# one eval_vit call; fails on any non-zero exit or a missing output file. A run that holds out a
# validation set must train on the rest and pick its checkpoint on it. Then a SeqPE run interrupted after step 2 and resumed (--resume latest) must
# log the same losses and accuracies as the uninterrupted one. Last, --log-every 0, an evaluation
# batch of 0 (train.eval_batch, eval_vit --batch) and a new run over a run folder are refused by name.
file(REMOVE_RECURSE ${WORK})
foreach(pe ape nope sin rope rope2d rope_mixed seqpe)
  execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe ${pe} --steps 4
                          --out ${WORK}/${pe} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_vit --pe ${pe} failed (${rc})")
  endif()
  execute_process(COMMAND ${EVAL} --run ${WORK}/${pe} --sizes 28,56 --plot ${WORK}/${pe}/eval.svg RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "eval_vit --run ${WORK}/${pe} failed (${rc})")
  endif()
  foreach(f run.json metrics.jsonl best.ckpt.safetensors last.ckpt.safetensors best.model.json eval.csv eval.svg)
    if(NOT EXISTS ${WORK}/${pe}/${f})
      message(FATAL_ERROR "missing ${WORK}/${pe}/${f}")
    endif()
  endforeach()
endforeach()

# Both runs in one evaluation, at a size that is not a multiple of the patch (30 px: grid 7, cropped),
# in both evaluations; at 28 px both see the images unchanged and must agree.
execute_process(COMMAND ${EVAL} --run ${WORK}/rope2d --run ${WORK}/seqpe --sizes 28,30 --csv ${WORK}/both.csv
                        --plot ${WORK}/both.svg RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "eval_vit with two runs failed (${rc})")
endif()
file(STRINGS ${WORK}/both.csv rows)
list(LENGTH rows count)
file(READ ${WORK}/both.svg svg)
string(REGEX MATCHALL "<polyline" lines "${svg}")
list(LENGTH lines line_count)
if(NOT count EQUAL 9 OR NOT "${rows}" MATCHES "seqpe,seqpe,upsample,30,7," OR NOT "${rows}" MATCHES
   "seqpe,seqpe,canvas,30,7," OR NOT line_count EQUAL 4)
  message(FATAL_ERROR "eval_vit with two runs: expected a header, 8 rows and 4 plotted lines, got ${rows} and ${line_count} lines")
endif()
foreach(run rope2d seqpe)
  string(REGEX MATCH "${run},${run},upsample,28,7,[^,]*" upsample "${rows}")
  string(REGEX MATCH "${run},${run},canvas,28,7,[^,]*" canvas "${rows}")
  string(REPLACE upsample canvas upsample "${upsample}")
  if(upsample STREQUAL "" OR NOT upsample STREQUAL canvas)
    message(FATAL_ERROR "eval_vit ${run}: the two evaluations differ at the training size: ${rows}")
  endif()
endforeach()
execute_process(COMMAND ${EVAL} --run ${WORK}/seqpe --sizes 20 --evaluations canvas RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT "${err}" MATCHES "canvas evaluation needs sizes of at least")
  message(FATAL_ERROR "eval_vit: a canvas smaller than the images was not refused: ${err}")
endif()

# 32 of the 128 synthetic training images held out: the run trains on 96 and logs validation accuracy.
execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe nope --steps 4 --validation 32
                        --out ${WORK}/validation RESULT_VARIABLE rc OUTPUT_VARIABLE out)
file(READ ${WORK}/validation/metrics.jsonl metrics)
if(NOT rc EQUAL 0 OR NOT "${out}" MATCHES "96 training images, 32 validation" OR NOT "${metrics}" MATCHES
   "validation_accuracy" OR "${metrics}" MATCHES "test_accuracy" OR NOT "${out}" MATCHES "done: best validation top-1")
  message(FATAL_ERROR "train_vit --validation 32: ${rc}\n${out}\n${metrics}")
endif()

foreach(resume "" latest)
  if(resume STREQUAL "")
    set(extra --stop-after 2)
  else()
    set(extra --stop-after 0 --resume latest)
  endif()
  execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe seqpe --steps 4
                          --out ${WORK}/resumed ${extra} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_vit --pe seqpe ${extra} failed (${rc})")
  endif()
endforeach()
# Step, loss, test accuracy and training loss of each logged step and evaluation (timings left out).
function(evaluations run out)
  file(READ ${run}/metrics.jsonl text)
  string(REGEX MATCHALL "\"(step|loss|test_accuracy|train_loss)\":[^,}]*" fields "${text}")
  set(${out} "${fields}" PARENT_SCOPE)
endfunction()
evaluations(${WORK}/seqpe uninterrupted)
evaluations(${WORK}/resumed resumed)
string(REGEX MATCHALL "test_accuracy" accuracies "${uninterrupted}")
list(LENGTH accuracies count)
if(NOT count EQUAL 2)
  message(FATAL_ERROR "expected 2 evaluations in ${WORK}/seqpe/metrics.jsonl, got: ${uninterrupted}")
endif()
if(NOT "${uninterrupted}" STREQUAL "${resumed}")
  message(FATAL_ERROR "the resumed SeqPE run differs:\n  uninterrupted ${uninterrupted}\n  resumed       ${resumed}")
endif()

# Refused by name, before any step: each used to divide by zero (SIGFPE) or, for the folder, to
# overwrite run.json before refusing.
function(refused pattern)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "${pattern}")
    message(FATAL_ERROR "expected '${pattern}' from ${ARGN}, got ${rc}: ${out}${err}")
  endif()
endfunction()
set(smoke ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --steps 4)
refused("train.log_every must be positive" ${smoke} --log-every 0 --out ${WORK}/refused)
file(WRITE ${WORK}/eval_batch_0.json "{\"train\": {\"eval_batch\": 0}}")
refused("train.eval_batch must be positive" ${TRAIN} --config ${WORK}/eval_batch_0.json --synthetic 128 --steps 4
        --out ${WORK}/refused)
refused("--batch must be positive" ${EVAL} --run ${WORK}/seqpe --batch 0)
file(READ ${WORK}/seqpe/run.json before)
refused("already holds checkpoints" ${smoke} --out ${WORK}/seqpe --width 48)
file(READ ${WORK}/seqpe/run.json after)
if(NOT before STREQUAL after)
  message(FATAL_ERROR "a refused run rewrote ${WORK}/seqpe/run.json")
endif()
